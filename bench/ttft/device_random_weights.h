// Random model weights generated directly on the GPU, in the layout upload_weights() produces;
// the benchmarks' name for generate_random_weights() (model/random_model.h).
#pragma once

#include <cstdint>

#include "core/status.h"
#include "kernels/cuda/cuda_backend.h"
#include "model/config.h"
#include "model/weights.h"

namespace runahead {

// The weights random_host_model(config, seed, random_weight_scale(config)) holds, generated on
// the GPU; errors name the tensor that did not fit.
[[nodiscard]] Result<ModelWeights> device_random_weights(const ModelConfig& config,
                                                         CudaBackend& gpu, uint64_t seed);

}  // namespace runahead
