// Device-side uniform random fill with the generator of kernels/random_uniform.h, so a fill on
// the GPU yields the values the same stream yields on the host.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/tensor.h"

namespace runahead {

// dst (bf16 or f32, possibly strided) = uniform_value(seed, i, scale, offset) for element i in
// row-major order of the view; bf16 rounds to nearest even.
cudaError_t launch_fill_uniform(Tensor dst, uint64_t seed, float scale, float offset,
                                cudaStream_t stream);

}  // namespace runahead
