// Device-side uniform random fill (a counter-based hash, reproducible for a seed).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/tensor.h"

namespace runahead {

// dst (bf16 or f32) = offset + scale * u, u uniform in [-1, 1).
cudaError_t launch_fill_uniform(Tensor dst, uint64_t seed, float scale, float offset,
                                cudaStream_t stream);

}  // namespace runahead
