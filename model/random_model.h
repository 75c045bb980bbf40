// Random-weight models with the shapes of real ones, for tests, demos and benchmarks:
// `--model random:NAME` loads one of model_presets() without a checkpoint.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "kernels/backend.h"
#include "model/host_model.h"
#include "model/weights.h"

namespace runahead {

// tiny-llama, tiny-falcon (odd sizes, a few layers), mini-llama (a few million parameters,
// 4096 positions), llama2-7b, llama3-8b, falcon-7b.
std::vector<std::string> model_presets();
[[nodiscard]] Result<ModelConfig> preset_config(const std::string& name);

// Fills every tensor the config needs with uniform values in [-scale, scale] (norm weights
// around 1, the embedding in [-1, 1]), stored as `dtype`. Each tensor draws its own stream of
// kernels/random_uniform.h, named by the tensor, so generate_random_weights() gives a backend
// the same values without the host.
HostModel random_host_model(const ModelConfig& config, uint64_t seed, float scale = 0.2f,
                            DType dtype = DType::kF32);

// Generates the values random_host_model(config, seed, scale) holds directly in `backend`'s
// memory, in the layout upload_weights() produces (fused q/k/v and gate/up), in the backend's
// compute type: a 7B model in well under a second with no host memory. kUnsupported where the
// backend has no in-place fill (the CPU); other errors name the tensor that did not fit.
[[nodiscard]] Result<ModelWeights> generate_random_weights(const ModelConfig& config,
                                                           Backend& backend, uint64_t seed,
                                                           float scale);

// "random:NAME" -> the preset's random model (seeded); anything else is left to load_model.
bool is_random_model_path(const std::string& path);
// The scale load_random_model() and load_random_weights() use: 1/sqrt(hidden) keeps the
// activations of deep random models in range.
float random_weight_scale(const ModelConfig& config);
[[nodiscard]] Result<HostModel> load_random_model(const std::string& path, uint64_t seed = 1);

// The model hash of "random:NAME" with `seed`: from the config, the seed, the scale and the
// generator's version, so every worker agrees on it whether it generated the weights on the
// host or on the device (the values are the same).
std::string random_model_hash(const ModelConfig& config, uint64_t seed);

struct RandomWeights {
  ModelWeights weights;
  std::string hash;       // random_model_hash()
  bool in_place = false;  // generated in the backend's memory, not uploaded from the host
};
// The weights of "random:NAME" on `backend`: generated in place where the backend can
// (generate_random_weights), else generated on the host and uploaded (`progress` reports the
// upload). The values are the same either way.
[[nodiscard]] Result<RandomWeights> load_random_weights(const std::string& path, Backend& backend,
                                                        uint64_t seed = 1,
                                                        const UploadProgress& progress = {});

}  // namespace runahead
