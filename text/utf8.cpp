#include "text/utf8.h"

namespace runahead::text {
namespace {

// Length of the well-formed character at `text[i]`, or 0 when the bytes there are ill-formed;
// `truncated` is set when they are a valid beginning cut short by the end of the text.
size_t char_length(std::string_view text, size_t i, bool& truncated, size_t& valid_prefix) {
  truncated = false;
  valid_prefix = 0;
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  size_t length = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;   // no overlongs
    if (lead == 0xed) high = 0x9f;  // no surrogates
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;
    if (lead == 0xf4) high = 0x8f;  // nothing past U+10FFFF
  } else {
    return 0;
  }
  for (size_t k = 1; k < length; ++k) {
    if (i + k >= text.size()) {
      truncated = true;
      valid_prefix = k;
      return 0;
    }
    const unsigned char c = byte(i + k);
    const unsigned char lo = k == 1 ? low : 0x80;
    const unsigned char hi = k == 1 ? high : 0xbf;
    if (c < lo || c > hi) {
      valid_prefix = k;
      return 0;
    }
  }
  return length;
}

}  // namespace

Status validate_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    bool truncated = false;
    size_t prefix = 0;
    const size_t length = char_length(text, i, truncated, prefix);
    if (length == 0) {
      return make_error(
          ErrorCode::kInvalidArgument,
          "text is not valid UTF-8 (bad byte sequence at offset " + std::to_string(i) + ")");
    }
    i += length;
  }
  return Status::ok();
}

std::string sanitize_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    bool truncated = false;
    size_t prefix = 0;
    const size_t length = char_length(bytes, i, truncated, prefix);
    if (length == 0) {
      out += "\xef\xbf\xbd";
      i += prefix == 0 ? 1 : prefix;
      continue;
    }
    out.append(bytes.substr(i, length));
    i += length;
  }
  return out;
}

size_t complete_utf8_prefix(std::string_view bytes) {
  // Only the last three bytes can start an unfinished character.
  const size_t start = bytes.size() > 3 ? bytes.size() - 3 : 0;
  for (size_t i = start; i < bytes.size(); ++i) {
    const auto lead = static_cast<unsigned char>(bytes[i]);
    if (lead < 0xc0) continue;
    bool truncated = false;
    size_t prefix = 0;
    if (char_length(bytes, i, truncated, prefix) == 0 && truncated) return i;
  }
  return bytes.size();
}

}  // namespace runahead::text
