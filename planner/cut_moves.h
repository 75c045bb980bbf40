// The moves a pattern search over a partition's interior cuts tries, in units of its step:
// every cut alone and neighbouring pairs together, and up to four cuts every combination.
// Shared by the model's solver (planner/chain_solver.h) and the measured search
// (planner/partition_search.h).
#pragma once

#include <cstddef>
#include <vector>

namespace runahead {

std::vector<std::vector<int>> cut_moves(size_t interior_cuts);

}  // namespace runahead
