// Embedding gather: out[i] = table[tokens[i]], tokens already on the device and range-checked.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/tensor.h"

namespace runahead {

cudaError_t launch_embed(Tensor table, const int32_t* device_tokens, Tensor out,
                         cudaStream_t stream);

}  // namespace runahead
