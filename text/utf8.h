// UTF-8 checks shared by the tokenizers and the streaming decoder.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"

namespace runahead::text {

// Ok for well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF);
// otherwise an error giving the byte offset of the first bad sequence.
[[nodiscard]] Status validate_utf8(std::string_view text);

// Replaces each ill-formed sequence with U+FFFD (maximal subparts, as Python's
// errors="replace" and Rust's from_utf8_lossy do).
std::string sanitize_utf8(std::string_view bytes);

// Length of the longest prefix that does not end inside a multi-byte character which the
// following bytes could still complete: what a stream can emit now.
size_t complete_utf8_prefix(std::string_view bytes);

}  // namespace runahead::text
