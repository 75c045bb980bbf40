// Hugging Face checkpoint directories: config.json plus model.safetensors or shards listed in
// model.safetensors.index.json. Tensors stay in the mapped files (bf16, fp16 or fp32).
#pragma once

#include <string>

#include "core/status.h"
#include "model/host_model.h"

namespace runahead {

[[nodiscard]] Result<HostModel> load_hf_checkpoint(const std::string& directory);

}  // namespace runahead
