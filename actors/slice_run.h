// One worker's part of one request: the per-layer KV-Runahead loop over a slice [begin, end).
//
// Two threads meet here. The compute thread calls run(): for each layer it projects the slice's
// Q/K/V (writing its own K/V into the cache), hands its own block to the I/O thread to forward,
// waits until the predecessor's prefix [0, begin) of that layer has landed, then attends and
// finishes the layer. The I/O thread owns the data plane: it resolves arriving blocks to their
// place in this cache, forwards each one to the successor as soon as it lands (cut-through),
// posts the own blocks, and tracks the sends until they complete.
//
// Between GPUs of one host the data plane writes blocks straight into the successor's cache
// (direct writes: the successor exposes its cache, SliceReady carries kv_target(), StartSlice
// hands it to the predecessor, release_sends() opens it).
//
// Where the data plane cannot reach the cache's memory (a GPU cache, UCX without CUDA), blocks
// travel through a host copy of the cache laid out the same way, per direction, in a pipeline:
// own blocks are copied to the host in chunks (SlicePlan::staging_chunk_bytes) behind the
// compute work, each chunk sent as soon as its copy completes; each arriving block is copied to
// the device as soon as it lands, and the compute thread waits until the layer's whole prefix is
// on the device. So the copy out, the transfer and the copy in of one layer overlap each other
// and the compute. Blocks are forwarded cut-through where both directions use the same memory,
// else by the compute thread once the layer's prefix is complete and in the memory the next hop
// reads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "actors/buffer_pool.h"
#include "core/status.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "net/data/transport.h"

namespace runahead {

// Where a slice run's large buffers come from; null: straight from the backend.
struct SliceBuffers {
  BufferPool* host_staging = nullptr;
  BufferPool* kv_caches = nullptr;
  // Leave the host staging copy to allocate_host_staging(): page-locking gigabytes takes
  // seconds, which the thread that creates the run (the worker's I/O thread) cannot spend.
  bool defer_host_staging = false;
};

struct SlicePlan {
  uint64_t request_id = 0;
  int64_t begin = 0;         // first token of this slice
  int64_t end = 0;           // one past its last token
  int64_t cache_tokens = 0;  // cache rows to allocate (>= end; more for the decoding worker)
  std::optional<net::PeerId> successor;  // the next worker in the chain, if any
  // Hold blocks for the successor until release_sends(): it may not know the request yet.
  bool hold_sends = false;
  // Move K/V that is not written directly through host memory even where the data plane could
  // reach the cache (tests). Staging is automatic where it cannot: a GPU cache with a data
  // plane without device access.
  bool force_host_staging = false;
  // The data plane writes directly between this cache and the predecessor's / successor's
  // (net::direct_path of their addresses).
  bool receive_direct = false;
  bool send_direct = false;
  // The workers after this one, in chain order (the successor first): with fan-out each gets
  // this worker's own K/V directly.
  std::vector<net::PeerId> later_workers;
  // Host-staged own blocks leave in chunks of about this many bytes (at least one token), so
  // that copying one chunk out overlaps sending the one before; 0: each block whole.
  size_t staging_chunk_bytes = size_t{4} << 20;
};

// What happened per layer, for the request's timeline.
struct LayerTiming {
  double compute_seconds = 0.0;
  double wait_seconds = 0.0;  // waiting for the predecessor's prefix
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

class SliceRun {
 public:
  // Runs `task` on the I/O thread (the thread that owns the data plane).
  using IoPost = std::function<void(std::function<void()> task)>;

  // The cache and host staging buffers come from the pools in `buffers` where given (reused
  // across requests), else straight from the backend.
  [[nodiscard]] static Result<std::unique_ptr<SliceRun>> create(const Transformer& transformer,
                                                                SlicePlan plan,
                                                                net::Transport& data_plane,
                                                                IoPost io_post,
                                                                SliceBuffers buffers = {});

  // Waits for the copies to and from host memory still in flight (they refer to this run).
  ~SliceRun();
  SliceRun(const SliceRun&) = delete;
  SliceRun& operator=(const SliceRun&) = delete;

  const SlicePlan& plan() const { return plan_; }
  KvCache& cache() { return *cache_; }
  // Where the predecessor may write this cache directly (for SliceReady); empty if it cannot.
  const std::vector<uint8_t>& kv_target() const { return kv_target_; }
  // The host staging copy is still to be allocated (SliceBuffers::defer_host_staging).
  bool host_staging_pending() const;
  // Allocates it (any thread, once, before the predecessor may send and before run()); on
  // failure the run fails with the reason, which is also returned.
  [[nodiscard]] Status allocate_host_staging();

  // --- I/O thread ---
  // Where an arriving block of this request goes; refuses blocks that do not fit the plan.
  [[nodiscard]] Result<void*> resolve(const net::KvBlockHeader& header);
  // A block landed (or failed): record it, forward it to the successor.
  void on_block(const net::KvBlockHeader& header, Status status);
  // Checks the sends in flight; returns true when none is left.
  bool poll_sends();
  // The successor is ready for this request (its kv_target(), empty unless it can be written
  // directly): posts the blocks held so far, and later ones at once. Fails the run if the
  // successor's cache cannot be opened.
  // With `fan_out` (every pair of the chain direct) own blocks go straight to every later
  // worker (`later_kv_targets`, in chain order) and nothing is forwarded.
  void release_sends(const std::vector<uint8_t>& successor_kv_target = {}, bool fan_out = false,
                     const std::vector<std::vector<uint8_t>>& later_kv_targets = {});
  // The request is over here: lets go of the successor's cache and withdraws this one's.
  void finish_transfers();

  // --- compute thread ---
  // Runs the slice through every layer. `workspace` must hold the slice; `deadline` bounds each
  // wait for the predecessor. On success the slice's last hidden state is in the workspace.
  [[nodiscard]] Status run(std::span<const int32_t> tokens, Workspace& workspace,
                           std::chrono::steady_clock::time_point deadline);

  // --- any thread ---
  // Fails the run: a waiting run() returns `reason` at once.
  void cancel(Status reason);
  // ok, or why the run failed or was cancelled.
  Status status() const;
  // Blocks until all sends completed or failed, or the deadline passed.
  [[nodiscard]] Status wait_sends(std::chrono::steady_clock::time_point deadline);
  std::vector<LayerTiming> timeline() const;

 private:
  SliceRun(const Transformer& transformer, SlicePlan plan, std::shared_ptr<KvCache> cache,
           net::Transport& data_plane, IoPost io_post);

  // The per-layer loop of run().
  [[nodiscard]] Status run_layers(std::span<const int32_t> tokens, Workspace& workspace,
                                  std::chrono::steady_clock::time_point deadline);
  // Posts rows [from, to) of `layer` to the successor (I/O thread).
  void send_block(int layer, int64_t from, int64_t to);
  // Copies rows [from, to) of `layer` to the host copy in chunks, behind the compute work
  // enqueued so far, and sends each chunk once it is there (compute thread).
  [[nodiscard]] Status stage_and_send(int layer, int64_t from, int64_t to);
  // Copies an arrived block from the host copy to the cache (I/O thread).
  void stage_in_block(int layer, int64_t from, int64_t to);
  // An asynchronous copy finished: one fewer in flight.
  void copy_finished();
  // Waits until no asynchronous copy is in flight.
  void drain_copies();
  // Rows [from, to) of `layer` where arriving blocks land / where sent blocks are read from:
  // the cache, or its host copy in a staged direction.
  void* incoming_rows(int layer, int64_t from, int64_t to) const;
  void* outgoing_rows(int layer, int64_t from, int64_t to) const;
  void* host_rows(int layer, int64_t from) const;
  // Blocks are forwarded as they land only where they arrive in the memory they leave from.
  bool cut_through() const {
    return plan_.successor.has_value() && stage_in_ == stage_out_ && !fan_out_;
  }
  // Opens a later worker's cache for direct writes; false (and the run failed) if it cannot.
  bool open_target(net::PeerId peer, const std::vector<uint8_t>& kv_target);
  int64_t received_rows(int layer) const;  // under mutex_
  // Prefix rows of `layer` in the cache, where the compute reads them (under mutex_).
  int64_t rows_on_device(int layer) const;

  const Transformer& transformer_;
  const SlicePlan plan_;
  std::shared_ptr<KvCache> cache_;  // shared with the data plane while exposed
  // Staged only: per layer, rows [0, host_rows_per_layer_) in the cache's layout (the prefix,
  // and the own rows where they leave staged).
  Buffer host_copy_;
  int64_t host_rows_per_layer_ = 0;
  BufferPool* host_staging_pool_ = nullptr;
  bool host_staging_ready_ = true;  // under mutex_
  bool stage_in_ = false;           // the prefix arrives in host_copy_
  bool stage_out_ = false;          // blocks leave from host_copy_
  std::vector<uint8_t> kv_target_;  // this cache, exposed for direct writes
  struct OpenTarget {
    uint64_t id = 0;       // the data plane's
    int64_t capacity = 0;  // its rows per layer
  };
  std::vector<OpenTarget> targets_;  // later workers' caches opened for direct writes
  bool targets_opened_ = false;      // I/O thread only
  std::atomic<bool> fan_out_{false};
  net::Transport& data_plane_;
  IoPost io_post_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::map<int64_t, int64_t>> arrived_;   // per layer: landed ranges begin -> end
  std::vector<std::map<int64_t, int64_t>> expected_;  // per layer: resolved, not yet landed
  std::vector<int64_t> staged_in_rows_;               // per layer: copied from the host copy
  size_t copies_in_flight_ = 0;                       // asynchronous host copies
  std::vector<LayerTiming> timeline_;
  std::optional<Status> failure_;
  std::vector<net::SendHandle> sends_in_flight_;  // I/O thread only
  bool holding_sends_ = false;                    // I/O thread only
  struct HeldBlock {
    int layer;
    int64_t from;
    int64_t to;
  };
  std::vector<HeldBlock> held_blocks_;  // I/O thread only
  size_t sends_posted_ = 0;
  size_t sends_completed_ = 0;
  int64_t own_rows_posted_ = 0;  // own rows handed to the data plane, all layers together
  int64_t forwarded_rows_ = 0;   // prefix rows passed on, all layers together
};

}  // namespace runahead
