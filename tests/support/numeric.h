// Comparing computed tensors with references.
#pragma once

#include <span>

namespace runahead::testing {

// ||got - want|| / ||want|| (L2); a size mismatch counts as an infinite error.
double relative_error(std::span<const float> got, std::span<const float> want);

}  // namespace runahead::testing
