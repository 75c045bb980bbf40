// Strided device-to-device copy of a matrix (the K/V cache writes): 16-byte accesses when rows
// allow, cudaMemcpy2DAsync otherwise.
#pragma once

#include <cuda_runtime_api.h>

#include "core/tensor.h"

namespace runahead {

cudaError_t launch_copy(Tensor src, Tensor dst, cudaStream_t stream);

}  // namespace runahead
