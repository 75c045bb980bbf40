// How a prompt is cut into slices, one per worker in chain order.
//
// A slice's cost follows the cost model t_i = a_i n_i + b_i n_i (s_i + n_i / 2): a per-token
// part (projections, MLP) and an attention part that grows with the keys each query sees.
// With an even split the late workers see more keys and finish last; the balanced partition
// gives earlier workers more tokens so that all workers finish together.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace runahead {

struct SliceCost {
  double per_token = 0.0;  // a: seconds per token
  double per_key = 0.0;    // b: seconds per (query token x key)

  double seconds(int64_t begin, int64_t tokens) const {
    const auto n = static_cast<double>(tokens);
    return per_token * n + per_key * n * (static_cast<double>(begin) + n / 2.0);
  }
};

// Slice boundaries: cuts[0] = 0 < cuts[1] < ... < cuts[P] = tokens.
using Partition = std::vector<int64_t>;

// Even split of `tokens` over `workers` (each gets at least one token).
[[nodiscard]] Result<Partition> even_partition(int64_t tokens, int workers);

// The partition whose predicted slice times are as equal as the integer cuts allow, for
// workers with the given costs (in chain order). Each slice has at least one token.
[[nodiscard]] Result<Partition> balanced_partition(int64_t tokens,
                                                   const std::vector<SliceCost>& costs);

// The largest predicted slice time of a partition.
double predicted_makespan(const Partition& cuts, const std::vector<SliceCost>& costs);

// "[0, 12, 40]", for messages and reports.
std::string cuts_text(const Partition& cuts);

}  // namespace runahead
