// Calibration: the chain model of a running cluster (planner/chain_model.h) fitted to timed
// requests, and optionally the best partition per length found by measured search (KVR-S),
// written together as a profile (planner/profile.h). The procedure behind `runahead calibrate`.
//
// The requests are the caller's: it times one request cut at given points over every worker,
// in chain order (tools/calibration_requests.h does so through a client). From those:
//  1. each worker's compute time per slice [s, s + n) (the timeline's compute, all layers), at
//     several prompt lengths and partitions (even, front-heavy, back-heavy, last or first worker
//     nearly idle), fitted to fixed + a n + b n (s + n / 2);
//  2. the link and the per-request overhead, fitted so that the chain model predicts the
//     measured TTFTs of the same requests (with the last worker nearly idle the whole prefix
//     crosses the links on the critical path), then the last worker's terms, the link and the
//     overhead refined against the TTFTs;
//  3. for each search length, KVR-S: the model's partition and the even split are timed, then a
//     measured hierarchical search (planner/partition_search.h) refines the model's partition;
//     the best goes into the profile's table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/status.h"
#include "model/config.h"
#include "planner/chain_model.h"
#include "planner/chain_solver.h"
#include "planner/partition.h"
#include "planner/partition_search.h"
#include "planner/profile.h"

namespace runahead {

// One timed request over every worker of the chain.
struct TimedRequest {
  double ttft_seconds = 0.0;
  std::vector<double> compute_seconds;     // per worker, by chain position, all layers
  int layers = 0;                          // layers each worker ran
  double first_bytes_out_per_layer = 0.0;  // K/V bytes the first worker sent per layer
};

// Runs one request whose prompt is cut at `cuts` over every worker, in chain order, and times
// it.
using TimeRequest = std::function<Result<TimedRequest>(const Partition& cuts)>;

struct CalibrationOptions {
  std::vector<int64_t> lengths = {128, 512, 2048};  // prompt lengths the model is fitted to
  std::vector<int64_t> search_lengths;              // prompt lengths searched (KVR-S)
  int repeat = 3;                                   // runs per timed partition (the median counts)
  int search_budget = 80;                           // partitions timed at most per searched length
  // What the profile records of the model: its hash, shape and Q/K/V share of the per-token
  // cost. A layer count other than 0 is checked against the layers the workers ran.
  ProfileModel model;
};

// The fit, as the profile holds it and as the compute times alone gave it.
struct CalibrationFit {
  const Profile& profile;  // workers, link and overhead; no searched partitions yet
  std::span<const WorkerCost> compute_costs;  // per worker, from its compute times alone
  size_t requests = 0;                        // TTFTs the link and overhead were fitted to
  double link_fit_error = 0.0;                // relative RMS, compute costs and fitted link
  double refined_error = 0.0;                 // relative RMS, the last worker's terms refined
};

// One searched length.
struct CalibrationSearch {
  int64_t tokens = 0;
  ChainPlan model_plan;  // the model's partition and its predicted TTFT
  double model_measured_seconds = 0.0;
  PartitionSearchResult searched;
  Partition even;
  double even_measured_seconds = 0.0;
};

// Follows a calibration as it runs (all optional).
class CalibrationObserver {
 public:
  virtual ~CalibrationObserver() = default;
  // A partition timed for the fit: the medians of its runs.
  virtual void timed(int64_t /*tokens*/, const Partition& /*cuts*/,
                     const TimedRequest& /*median*/) {}
  virtual void fitted(const CalibrationFit& /*fit*/) {}
  virtual void searched(const CalibrationSearch& /*search*/) {}
};

// The profile of `workers` (in chain order, as the requests run over them). Lengths must hold
// at least one token per worker; with one worker nothing is searched.
[[nodiscard]] Result<Profile> calibrate(std::span<const ChainWorker> workers,
                                        const TimeRequest& time_request,
                                        const CalibrationOptions& options,
                                        CalibrationObserver* observer = nullptr);

// The partitions timed for the fit at one length: even; the first or the last worker with
// three quarters; the first or the last with one token (the rest even). Each worker so sees
// slices of several lengths after several prefixes, and with the last worker nearly idle the
// whole prefix crosses the links on the critical path. Sorted, without repeats.
std::vector<Partition> calibration_partitions(int64_t tokens, size_t workers);

// What a profile records of a model: its shape, layer count and the share of the per-token
// cost spent before the prefix is needed (the Q/K/V projection against the output projection
// and the MLP). The hash is the workers' to give.
ProfileModel profile_model_of(const ModelConfig& config);

}  // namespace runahead
