#include "planner/partition_search.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "planner/cut_moves.h"

namespace runahead {
namespace {}  // namespace

Result<PartitionSearchResult> search_partition(int64_t tokens, const Partition& start,
                                               const MeasurePartition& measure,
                                               const PartitionSearchOptions& options) {
  const size_t workers = start.size() - 1;
  bool valid_start = start.size() >= 2 && start.front() == 0 && start.back() == tokens;
  for (size_t i = 0; valid_start && i + 1 < start.size(); ++i) {
    valid_start = start[i + 1] > start[i];
  }
  if (!valid_start) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "partition search: the start is not a partition of " + std::to_string(tokens) + " tokens");
  }
  std::map<Partition, double> measured;
  PartitionSearchResult result;
  auto time = [&](const Partition& cuts) -> Result<double> {
    if (auto it = measured.find(cuts); it != measured.end()) return it->second;
    RUNAHEAD_ASSIGN_OR_RETURN(const double seconds, measure(cuts));
    measured[cuts] = seconds;
    ++result.measurements;
    return seconds;
  };
  result.cuts = start;
  RUNAHEAD_ASSIGN_OR_RETURN(result.seconds, time(start));
  if (workers < 2) return result;

  const auto moves = cut_moves(workers - 1);
  int64_t step = options.initial_step > 0
                     ? options.initial_step
                     : std::max<int64_t>(1, tokens / (2 * static_cast<int64_t>(workers)));
  for (; step >= std::max<int64_t>(1, options.min_step); step /= 2) {
    bool improved = true;
    while (improved) {
      improved = false;
      Partition centre = result.cuts;
      Partition best = centre;
      double best_seconds = result.seconds;
      for (const std::vector<int>& move : moves) {
        Partition trial = centre;
        bool ok = true;
        for (size_t i = 0; i + 1 < workers; ++i) trial[i + 1] += move[i] * step;
        for (size_t i = 0; ok && i < workers; ++i) ok = trial[i + 1] > trial[i];
        if (!ok) continue;
        if (measured.count(trial) == 0 && result.measurements >= options.max_measurements) {
          return result;
        }
        RUNAHEAD_ASSIGN_OR_RETURN(const double seconds, time(trial));
        if (seconds < best_seconds) {
          best_seconds = seconds;
          best = trial;
        }
      }
      if (best_seconds < result.seconds * (1.0 - options.min_gain)) {
        result.cuts = best;
        result.seconds = best_seconds;
        improved = true;
      }
    }
  }
  return result;
}

}  // namespace runahead
