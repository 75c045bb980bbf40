// Random model weights generated directly on the GPU, in the layout upload_weights() produces:
// a 7B model's 13 GB are written in well under a second, with nothing generated on the host.
#pragma once

#include <cstdint>

#include "core/status.h"
#include "kernels/cuda/cuda_backend.h"
#include "model/config.h"
#include "model/weights.h"

namespace runahead {

// Linear weights uniform in [-1/sqrt(hidden), 1/sqrt(hidden)], embeddings in [-1, 1], norm
// weights in [0.9, 1.1], biases small; errors name the tensor that did not fit.
[[nodiscard]] Result<ModelWeights> device_random_weights(const ModelConfig& config,
                                                         CudaBackend& gpu, uint64_t seed);

}  // namespace runahead
