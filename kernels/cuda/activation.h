// The MLP activations: SwiGLU (silu(gate) * up) and the exact (erf) GELU.
#pragma once

#include <cuda_runtime_api.h>

#include "core/tensor.h"

namespace runahead {

// gate_up = [gate | up] along the columns; out has half its columns.
cudaError_t launch_swiglu(Tensor gate_up, Tensor out, cudaStream_t stream);
cudaError_t launch_gelu(Tensor x, Tensor out, cudaStream_t stream);

}  // namespace runahead
