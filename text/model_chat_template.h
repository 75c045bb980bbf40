// Where a model keeps its chat template: tokenizer.chat_template of a GGUF file, or
// chat_template of a checkpoint directory's tokenizer_config.json.
#pragma once

#include <string>

#include "core/status.h"

namespace runahead::text {

// The Jinja source of `model`'s chat template; errors name the file and the key.
[[nodiscard]] Result<std::string> load_chat_template_source(const std::string& model);

}  // namespace runahead::text
