// The partition with the lowest predicted TTFT for a chain model (planner/chain_model.h):
// integer cuts, at least one token per slice, optionally on fewer workers than the model has.
//
// A branch and bound over the cuts in chain order: a worker's timeline depends only on the
// blocks that reach it, so fixing the first k cuts fixes the first k workers' timelines, and
// two lower bounds prune the rest: (1) the last layer's blocks already on their way still have
// to cross every remaining link, and the last worker still has to attend to them; (2) every
// remaining worker must have finished L - 1 layers and projected the last before the last
// worker can finish, a makespan problem that bisection solves exactly. The search starts from
// the best of the makespan-balanced, bound-balanced and even partitions. Long prompts are
// searched on a grid of cut positions, then refined token by token (pattern search).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/status.h"
#include "planner/chain_model.h"
#include "planner/partition.h"

namespace runahead {

struct SolverOptions {
  // Try chains that skip workers (keeping their order) when those predict a faster TTFT:
  // every sub-chain for up to 8 workers, the chain's prefixes beyond.
  bool allow_fewer_workers = false;
  // Cut positions the search considers per cut; longer prompts are searched on a coarser grid
  // first, then refined token by token.
  int64_t grid_positions = 64;
  // Partitions and partial partitions the search may evaluate (a few microseconds each), over
  // all chains; past it the best one found so far is returned.
  size_t node_limit = 20'000;
};

struct ChainPlan {
  std::vector<size_t> chain;  // indices into ChainModel::workers, in chain order
  Partition cuts;             // cuts.size() == chain.size() + 1
  double predicted_seconds = 0.0;
  // The search covered every integer partition of every chain it was allowed: the plan is
  // optimal for the model, not just the best found.
  bool exhaustive = false;
};

[[nodiscard]] Result<ChainPlan> fastest_partition(const ChainModel& model, int64_t tokens,
                                                  const SolverOptions& options = {});

}  // namespace runahead
