// Fitting the chain model (planner/chain_model.h) to measurements: each worker's compute cost
// from the compute times of its slices, then one link cost and the per-request overhead from
// the TTFTs of whole requests, given the compute costs. Errors are relative, so that short and
// long runs weigh alike.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "planner/chain_model.h"
#include "planner/partition.h"

namespace runahead {

// A slice [begin, begin + tokens) took `seconds` of compute on one worker (all layers);
// `forwards`: the worker had a successor, so it forwarded the prefix.
struct ComputeSample {
  int64_t begin = 0;
  int64_t tokens = 0;
  double seconds = 0.0;
  bool forwards = false;
};

struct ComputeFit {
  WorkerCost cost;
  double relative_rms = 0.0;  // of the fitted times against the samples
};

// Least squares fit of fixed + a n + b n (s + n / 2) + c s (c where the worker forwarded) with
// every term >= 0 (the best of the fits on each subset of the terms). Needs at least one sample
// with positive time.
[[nodiscard]] Result<ComputeFit> fit_compute(std::span<const ComputeSample> samples,
                                             double qkv_fraction);

// A request over model.workers[chain[i]] (all workers when empty) took `seconds` to its first
// token.
struct TtftSample {
  std::vector<size_t> chain;
  Partition cuts;
  double seconds = 0.0;
};

struct LinkFit {
  LinkCost link;
  double overhead_seconds = 0.0;
  double relative_rms = 0.0;  // of the predicted TTFTs against the samples
};

// The link cost (the same for every pair) and overhead that make `model` (its compute costs as
// they are; its links and overhead replaced) predict the samples best: a search over latency
// and bandwidth on a logarithmic grid, the overhead solved for each. Of the link costs that fit
// within 1% of the best error, the cheapest is kept: the measurements do not show the rest.
[[nodiscard]] Result<LinkFit> fit_link_and_overhead(const ChainModel& model,
                                                    std::span<const TtftSample> samples);

// Refines `model` so that its predictions fit the samples best: the compute terms (fixed, a,
// b) of the workers listed in `workers`, one link's latency and bandwidth (set on every pair)
// and the overhead; the other workers' terms stay as they are. Coordinate descent on the
// relative squared error, each term scaled up and down by a factor that shrinks from 2 to 1.01
// (a term at zero is tried at a small value, and any term at zero). For workers whose timeline
// compute misses work the device still had queued: the TTFT is what the plans must predict.
// Few samples cannot pin down many terms, so refine only the workers that need it. Returns
// the relative RMS error after.
[[nodiscard]] Result<double> refine_to_ttft(ChainModel& model, std::span<const TtftSample> samples,
                                            std::span<const size_t> workers);

// Relative RMS error of the model's predictions for the samples.
[[nodiscard]] Result<double> prediction_error(const ChainModel& model,
                                              std::span<const TtftSample> samples);

}  // namespace runahead
