// Comparing computed tensors with references.
#pragma once

#include <cstdint>
#include <span>

namespace runahead::testing {

// ||got - want|| / ||want|| (L2); a size mismatch counts as an infinite error.
double relative_error(std::span<const float> got, std::span<const float> want);

// The worst row of a row-major matrix of `cols` columns: max |got - want| over the row divided
// by max |want| over the row (at least `floor`), so that one wrong row (one query, the last
// tile) is seen however many right rows surround it. NaN or a size mismatch is infinite.
struct RowError {
  double error = 0.0;
  int64_t row = -1;  // the row with the largest error; -1 when there are no rows
};
RowError worst_row_error(std::span<const float> got, std::span<const float> want, int64_t cols,
                         double floor = 1e-6);

}  // namespace runahead::testing
