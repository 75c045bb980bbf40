// Greedy decoding's choice on the device: the index of a row's largest value.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/tensor.h"

namespace runahead {

// *device_index = the index of the largest of row's `cols` values (bf16 or f32, one row), the
// first on ties as torch.argmax and std::max_element; one block.
cudaError_t launch_argmax(Tensor row, int32_t* device_index, cudaStream_t stream);

}  // namespace runahead
