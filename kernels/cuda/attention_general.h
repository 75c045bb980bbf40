// Causal prefill attention for any head_dim up to 256: one warp per query row, keys and values
// tiled through shared memory, online softmax in fp32 (no scores matrix in memory).
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/backend.h"

namespace runahead {

constexpr int kMaxGeneralHeadDim = 256;

cudaError_t launch_attention_general(const AttentionArgs& args, cudaStream_t stream);

}  // namespace runahead
