// The time-to-first-token a KV-Runahead chain is predicted to take for a partition: each
// worker's compute cost, split at the point where it needs its predecessor's K/V, and the cost
// of moving K/V blocks over each link, simulated layer by layer.
//
// Per layer, worker i projects Q/K/V for its tokens (q_i), waits until the layer's prefix
// [0, s_i) has landed, then attends and finishes the layer (f_i). Its own K/V block is sent as
// soon as it is projected; every block that lands is forwarded to the successor at once
// (cut-through). A link carries one block at a time, in the order they were handed to it
// (latency + bytes / bandwidth each). The TTFT is the last worker's finish of the last layer
// plus a constant per-request overhead; earlier workers' last attention and MLP are off the
// critical path.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "planner/partition.h"

namespace runahead {

// One worker's compute cost for a slice [s, s + n) over all layers:
//   fixed + a n + b n (s + n / 2), and c s more when it has a successor,
// of which qkv_fraction * a n is spent before the prefix is needed (the Q/K/V projection).
// c is what forwarding the prefix costs the worker's own compute (copies issued on its device
// or its compute thread); zero where forwarding runs beside the computation.
struct WorkerCost {
  SliceCost slice;                // a (per token) and b (per query x key)
  double fixed_seconds = 0.0;     // per slice whatever its length (launches, synchronization)
  double qkv_fraction = 0.25;     // share of the per-token part spent projecting Q/K/V
  double per_prefix_token = 0.0;  // c: seconds per forwarded prefix token (all layers)

  // Without forwarding (the last worker of a chain).
  double seconds(int64_t begin, int64_t tokens) const {
    return fixed_seconds + slice.seconds(begin, tokens);
  }
  double forwarding_seconds(int64_t begin) const {
    return per_prefix_token * static_cast<double>(begin);
  }
};

// Moving `bytes` costs latency + bytes / bandwidth; a bandwidth of 0 means no limit.
struct LinkCost {
  double latency_seconds = 0.0;
  double bytes_per_second = 0.0;

  double seconds(double bytes) const {
    return latency_seconds + (bytes_per_second > 0.0 ? bytes / bytes_per_second : 0.0);
  }
};

struct ChainModel {
  std::vector<WorkerCost> workers;  // the candidate workers, in chain order
  // links[i][j]: from workers[i] to workers[j] (i < j), so that a chain may skip workers.
  std::vector<std::vector<LinkCost>> links;
  int layers = 1;
  double kv_bytes_per_token = 0.0;  // K and V of one token in one layer
  double overhead_seconds = 0.0;    // per request: control messages, first-token relay

  // A model of `workers` workers with one link cost between every pair.
  static ChainModel uniform(std::vector<WorkerCost> workers, LinkCost link, int layers,
                            double kv_bytes_per_token, double overhead_seconds = 0.0);
  const LinkCost& link(size_t from, size_t to) const { return links[from][to]; }
  // Names the first field out of range.
  [[nodiscard]] Status validate() const;
};

// A block of one layer's K/V on its way to the next worker: when it lands there, its size.
struct BlockArrival {
  double seconds = 0.0;
  double bytes = 0.0;
};

// The pipeline built up one worker at a time, in chain order. A worker's timeline depends only
// on the blocks that reach it, so a partial chain can be extended (and bounded) by a search.
class ChainPipeline {
 public:
  explicit ChainPipeline(const ChainModel& model);

  // Adds model.workers[worker] with slice [begin, end) after the workers added so far;
  // `next` is the index of its successor in model.workers, or -1 for the last worker.
  void add(size_t worker, int64_t begin, int64_t end, int64_t next);
  // Back to no workers (keeping the memory).
  void reset() {
    blocks_ = 0;
    arrivals_.clear();
    finish_ = 0.0;
  }

  // The finish of the last added worker's last layer (seconds from the request's start).
  double finish_seconds() const { return finish_; }
  // Blocks of `layer` landing at the successor of the last added worker, by arrival time (one
  // per worker added so far).
  std::span<const BlockArrival> arrivals(int layer) const {
    return {arrivals_.data() + static_cast<size_t>(layer) * blocks_, blocks_};
  }

 private:
  const ChainModel* model_;
  size_t blocks_ = 0;                   // blocks per layer in arrivals_
  std::vector<BlockArrival> arrivals_;  // layer by layer
  std::vector<BlockArrival> scratch_;
  double finish_ = 0.0;
};

// Predicted TTFT (seconds, overhead included) of `cuts` over model.workers[chain[i]] in order;
// an empty chain means all workers. Needs cuts.size() == chain.size() + 1.
[[nodiscard]] Result<double> predict_ttft(const ChainModel& model, const Partition& cuts,
                                          std::span<const size_t> chain = {});

}  // namespace runahead
