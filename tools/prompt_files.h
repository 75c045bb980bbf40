// Prompts from files or standard input (--prompt-file, --tokens-file): one command-line argument
// is capped at 128 KiB on Linux, far below the long prompts KV-Runahead is for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace runahead::cli {

// Largest prompt file accepted, in bytes: about 16 million tokens of text or ids.
inline constexpr size_t kMaxPromptFileBytes = size_t{256} << 20;

// The whole file as text; "-" reads standard input.
[[nodiscard]] Result<std::string> read_prompt_text(const std::string& path);

// Token ids separated by commas and/or white space; "-" reads standard input. An error names
// the file and the position of the first entry that is not an id in [0, 2^31).
[[nodiscard]] Result<std::vector<int32_t>> read_token_ids(const std::string& path);

}  // namespace runahead::cli
