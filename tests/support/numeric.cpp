#include "tests/support/numeric.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace runahead::testing {

double relative_error(std::span<const float> got, std::span<const float> want) {
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  double diff = 0.0;
  double norm = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double d = double{got[i]} - double{want[i]};
    diff += d * d;
    norm += double{want[i]} * want[i];
  }
  return std::sqrt(diff / std::max(norm, 1e-30));
}

RowError worst_row_error(std::span<const float> got, std::span<const float> want, int64_t cols,
                         double floor) {
  constexpr double kInfinite = std::numeric_limits<double>::infinity();
  if (got.size() != want.size() || cols <= 0 || want.size() % static_cast<size_t>(cols) != 0) {
    return RowError{kInfinite, 0};
  }
  RowError worst;
  const auto rows = static_cast<int64_t>(want.size()) / cols;
  for (int64_t r = 0; r < rows; ++r) {
    double largest_diff = 0.0;
    double largest_want = floor;
    bool nan = false;
    for (int64_t c = 0; c < cols; ++c) {
      const auto i = static_cast<size_t>(r * cols + c);
      const double d = std::abs(double{got[i]} - double{want[i]});
      if (std::isnan(d)) nan = true;
      largest_diff = std::max(largest_diff, d);
      largest_want = std::max(largest_want, std::abs(double{want[i]}));
    }
    const double error = nan ? kInfinite : largest_diff / largest_want;
    if (worst.row < 0 || error > worst.error) worst = RowError{error, r};
  }
  return worst;
}

}  // namespace runahead::testing
