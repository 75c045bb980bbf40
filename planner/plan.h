// The plan of one request: which of the healthy workers run it, in what order, and where the
// prompt is cut between them. A pure function of what the coordinator knows (the request's
// length and partition scheme, its workers and their load, the calibration profile), so that
// every choice among the partition strategies is made, and tested, in one place:
//
//   explicit             the request's own cuts
//   searched             the profile's measured partitions for this worker count (KVR-S,
//                        interpolated as KVR-P); where there are none, as balanced
//   balanced, profile    the profile's chain model, solved for the fastest first token; it may
//                        use fewer workers when the request did not fix their number
//   balanced, probes     the workers' start-up cost probes, balanced (compute only)
//   even, or no costs    equal slices
//
// docs/load-balancing.md describes the strategies and the models behind them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/partition_scheme.h"
#include "core/status.h"
#include "planner/partition.h"
#include "planner/profile.h"

namespace runahead {

struct PlanRequest {
  int64_t prompt_tokens = 0;
  PartitionScheme scheme = PartitionScheme::kBalanced;
  size_t workers = 0;  // how many workers the request asks for (0: the planner decides)
  Partition cuts;      // kExplicit: 0 = c0 < c1 < ... < cP = prompt_tokens, one slice per worker
};

// A healthy worker, given in chain order.
struct PlanWorker {
  ChainWorker chain;  // its name, backend and start-up measurement (zero when not measured)
  size_t active_requests = 0;  // requests it takes part in now: the least busy are chosen first
};

struct PlannerOptions {
  // Prompts shorter than this many tokens per worker use fewer workers (one at the least).
  int64_t min_tokens_per_worker = 32;
  size_t max_workers_per_request = 0;  // 0: every healthy worker
};

// Which strategy cut the prompt.
enum class PlanMethod : uint8_t { kExplicit, kSearched, kChainModel, kProbedCosts, kEven };

struct Plan {
  std::vector<size_t> chain;  // indices into the workers given, in chain order
  Partition cuts;             // cuts.size() == chain.size() + 1
  PlanMethod method = PlanMethod::kEven;
  // Why the request's scheme was not followed as asked (a searched request with no searched
  // partition); empty when it was.
  std::string fallback;
};

// `profile`: a calibration profile of the cluster's model, or null (none, or one of another
// model). Errors: kUnavailable when the request needs more workers than are given, else the
// partition's own (kInvalidArgument for explicit cuts that do not fit the prompt).
[[nodiscard]] Result<Plan> plan(const PlanRequest& request, std::span<const PlanWorker> workers,
                                const Profile* profile, const PlannerOptions& options = {});

}  // namespace runahead
