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

}  // namespace runahead::testing
