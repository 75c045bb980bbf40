// Where the tokenizer test data lives, and the SmolLM2 GGUF file when one is available.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace runahead::testing {

inline std::string text_data(const std::string& name) {
  return std::string(RUNAHEAD_TEXT_TEST_DATA) + "/" + name;
}

// RUNAHEAD_SMOLLM2_GGUF, else the file deploy/fetch_model.sh leaves in its cache; empty when
// neither exists.
inline std::string smollm2_gguf() {
  if (const char* path = std::getenv("RUNAHEAD_SMOLLM2_GGUF"); path && *path) return path;
  std::filesystem::path cache;
  if (const char* dir = std::getenv("RUNAHEAD_CACHE"); dir && *dir) {
    cache = dir;
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    cache = std::filesystem::path(home) / ".cache" / "runahead";
  }
  const auto file = cache / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf";
  std::error_code error;
  return std::filesystem::exists(file, error) ? file.string() : std::string();
}

}  // namespace runahead::testing
