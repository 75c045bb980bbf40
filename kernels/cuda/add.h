// Element-wise sum of two matrices; out may alias either input.
#pragma once

#include <cuda_runtime_api.h>

#include "core/tensor.h"

namespace runahead {

cudaError_t launch_add(Tensor a, Tensor b, Tensor out, cudaStream_t stream);

}  // namespace runahead
