// The model the HTTP API serves: its name, tokenizer and chat template, loaded once at start.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/status.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace runahead::http {

struct ServingModel {
  std::string name;     // the id clients name in "model"
  int64_t created = 0;  // Unix seconds, for /v1/models
  std::unique_ptr<text::Tokenizer> tokenizer;
  std::optional<text::ChatTemplate> chat;
  std::string chat_unavailable;  // why chat is refused when `chat` is empty

  // From a .gguf file, a checkpoint directory or a tokenizer file; `name` empty: the file name.
  [[nodiscard]] static Result<ServingModel> load(const std::string& path, const std::string& name);
};

}  // namespace runahead::http
