// Random-weight models with the shapes of real ones, for tests, demos and benchmarks:
// `--model random:NAME` loads one of model_presets() without a checkpoint.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/host_model.h"

namespace runahead {

// tiny-llama, tiny-falcon (odd sizes, a few layers), mini-llama (a few million parameters,
// 4096 positions), llama2-7b, llama3-8b, falcon-7b.
std::vector<std::string> model_presets();
[[nodiscard]] Result<ModelConfig> preset_config(const std::string& name);

// Fills every tensor the config needs with uniform values in [-scale, scale] (norm weights
// around 1), stored as `dtype`.
HostModel random_host_model(const ModelConfig& config, uint64_t seed, float scale = 0.2f,
                            DType dtype = DType::kF32);

// "random:NAME" -> the preset's random model (seeded); anything else is left to load_model.
bool is_random_model_path(const std::string& path);
[[nodiscard]] Result<HostModel> load_random_model(const std::string& path, uint64_t seed = 1);

}  // namespace runahead
