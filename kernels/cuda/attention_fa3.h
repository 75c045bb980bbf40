// Causal prefill attention for Hopper (sm_90a) in the FlashAttention-3 structure, head_dim 64
// and 128: per block of 128 queries, a producer warpgroup streams K/V tiles with the bulk tensor
// copy engine (TMA) into a multi-stage shared-memory ring guarded by mbarriers, and two consumer
// warpgroups (64 queries each, registers shifted to them with setmaxnreg) run wgmma and the
// online softmax in ping-pong, so one's softmax overlaps the other's matrix products.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/backend.h"

namespace runahead {

// Whether this device runs the sm_90a code (compute capability 9.0), has the opt-in shared
// memory for the K/V ring, and its driver offers tensor-map encoding.
bool attention_fa3_usable(const cudaDeviceProp& properties);
// Whether the kernel takes these arguments (head_dim, 16-byte aligned rows, GQA grouping).
bool attention_fa3_supports(const AttentionArgs& args);
// `max_shared_bytes` is the device's opt-in shared memory per block.
cudaError_t launch_attention_fa3(const AttentionArgs& args, size_t max_shared_bytes,
                                 cudaStream_t stream);

}  // namespace runahead
