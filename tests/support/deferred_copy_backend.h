// A backend that runs another's operations but completes its asynchronous copies later, each
// direction on a thread of its own and after a random delay, as a GPU's copy engines do. Code
// that reads a copy's destination before its completion callback sees stale data in the tests.
#pragma once

#include <cstdint>
#include <memory>

#include "kernels/backend.h"

namespace runahead::testing {

std::unique_ptr<Backend> make_deferred_copy_backend(std::unique_ptr<Backend> inner, uint64_t seed);

}  // namespace runahead::testing
