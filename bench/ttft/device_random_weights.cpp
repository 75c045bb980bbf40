#include "bench/ttft/device_random_weights.h"

#include "model/random_model.h"

namespace runahead {

Result<ModelWeights> device_random_weights(const ModelConfig& config, CudaBackend& gpu,
                                           uint64_t seed) {
  return generate_random_weights(config, gpu, seed, random_weight_scale(config));
}

}  // namespace runahead
