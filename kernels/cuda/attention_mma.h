// Causal prefill attention on the tensor cores (mma.sync bf16, fp32 accumulation) for head_dim
// 64 and 128: FlashAttention-2-style tiles of 16 queries per warp (4 or 8 warps) x 64 keys,
// online softmax, K/V tiles double-buffered through shared memory with cp.async.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/backend.h"

namespace runahead {

// Whether the tensor-core kernel takes these arguments (head_dim, 16-byte aligned rows).
bool attention_mma_supports(const AttentionArgs& args);
// The warps per block (4 or 8) for a device with `max_shared_bytes` of opt-in shared memory.
int attention_mma_default_warps(size_t max_shared_bytes);
// `max_shared_bytes` is the device's opt-in shared memory per block; `warps` is 4 or 8.
cudaError_t launch_attention_mma(const AttentionArgs& args, size_t max_shared_bytes, int warps,
                                 cudaStream_t stream);

}  // namespace runahead
