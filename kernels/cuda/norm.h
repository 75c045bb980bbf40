// RMSNorm and LayerNorm over the columns of each row, statistics in fp32.
#pragma once

#include <cuda_runtime_api.h>

#include "core/tensor.h"

namespace runahead {

cudaError_t launch_rms_norm(Tensor x, Tensor weight, float eps, Tensor out, cudaStream_t stream);
// `bias` may be empty.
cudaError_t launch_layer_norm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out,
                              cudaStream_t stream);
// residual += delta (stored as bf16), then out = the norm of the stored residual; one kernel,
// one read of each operand. `out` must not alias `residual` or `delta`.
cudaError_t launch_add_rms_norm(Tensor residual, Tensor delta, Tensor weight, float eps, Tensor out,
                                cudaStream_t stream);
cudaError_t launch_add_layer_norm(Tensor residual, Tensor delta, Tensor weight, Tensor bias,
                                  float eps, Tensor out, cudaStream_t stream);

}  // namespace runahead
