// Causal prefill attention on Hopper's warpgroup tensor-core instructions (wgmma, sm_90a) for
// head_dim 64 and 128: one warpgroup per 64 queries, tiles of 64 keys in 128-byte-swizzled
// shared memory (cp.async, each tile refilled as soon as it has been read), online softmax in
// fp32, P kept in registers.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/backend.h"

namespace runahead {

// Whether this device runs the sm_90a code (compute capability 9.0).
bool attention_wgmma_usable(const cudaDeviceProp& properties);
// Whether the kernel takes these arguments (head_dim, 16-byte aligned rows).
bool attention_wgmma_supports(const AttentionArgs& args);
// `max_shared_bytes` is the device's opt-in shared memory per block.
cudaError_t launch_attention_wgmma(const AttentionArgs& args, size_t max_shared_bytes,
                                   cudaStream_t stream);

}  // namespace runahead
