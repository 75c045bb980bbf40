// A fingerprint of a model's config and weights, compared when a worker joins a cluster: all
// workers of one coordinator must run the same model.
#pragma once

#include <string>

#include "model/host_model.h"

namespace runahead {

// 16 hex digits. Covers every config field the forward pass uses, every tensor's name, type
// and shape, and samples of its bytes (start, middle and end, a few KiB each): hashing all of a
// 13 GB checkpoint would cost a worker seconds at start, while any real difference between two
// checkpoints shows in the samples.
std::string model_hash(const HostModel& model);
// For a model whose every value follows from its config and a recipe (random presets): covers
// the config as above and `recipe`, which names everything else that fixes the values (seed,
// generator version, scales). Identical wherever the model is generated, host or device.
std::string generated_model_hash(const ModelConfig& config, const std::string& recipe);

}  // namespace runahead
