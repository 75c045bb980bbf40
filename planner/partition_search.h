// KVR-S: a measured search for the partition with the lowest TTFT (the paper's hierarchical
// grid search), here started from a given partition (the cost model's) so that it refines
// rather than explores. On each level every cut may move by -step, 0 or +step (all
// combinations up to four cuts; single cuts and neighbouring pairs beyond); the best measured
// partition becomes the centre while it improves by more than `min_gain`, then the step halves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "core/status.h"
#include "planner/partition.h"

namespace runahead {

struct PartitionSearchOptions {
  int64_t initial_step = 0;  // 0: tokens / (2 x workers)
  int64_t min_step = 1;
  double min_gain = 0.005;  // relative TTFT improvement that counts (measurements are noisy)
  size_t max_measurements = 200;
};

struct PartitionSearchResult {
  Partition cuts;
  double seconds = 0.0;  // as measured for `cuts`
  size_t measurements = 0;
};

// `measure` times one partition (a median of runs, say); each distinct partition is measured
// once.
using MeasurePartition = std::function<Result<double>(const Partition&)>;

[[nodiscard]] Result<PartitionSearchResult> search_partition(
    int64_t tokens, const Partition& start, const MeasurePartition& measure,
    const PartitionSearchOptions& options = {});

}  // namespace runahead
