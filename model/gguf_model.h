// GGUF files (llama.cpp's format): llama.* metadata and tensors, dequantized on load.
#pragma once

#include <string>

#include "core/status.h"
#include "model/host_model.h"

namespace runahead {

[[nodiscard]] Result<HostModel> load_gguf_model(const std::string& path);

}  // namespace runahead
