// A short measurement of a worker's slice cost, taken when it starts, for balanced partitions.
#pragma once

#include <cstdint>

#include "core/status.h"
#include "model/transformer.h"
#include "planner/partition.h"

namespace runahead {

// Times a slice of `tokens` tokens with no prefix and one after a prefix three times as long,
// and fits t = a n + b n (s + n / 2) to them (median of `repeats` runs each).
[[nodiscard]] Result<SliceCost> measure_slice_cost(const Transformer& transformer, int64_t tokens,
                                                   int repeats = 3);

}  // namespace runahead
