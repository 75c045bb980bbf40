// Rotary position embeddings, applied in place; angles in fp32 as Hugging Face computes them.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/backend.h"

namespace runahead {

cudaError_t launch_rope(const RopeArgs& args, cudaStream_t stream);

}  // namespace runahead
