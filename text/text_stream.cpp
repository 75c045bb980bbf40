#include "text/text_stream.h"

#include "text/utf8.h"

namespace runahead::text {

// Decoding everything each time keeps decoders whose output depends on context (SentencePiece
// drops the first piece's leading space) right; generation lengths keep this cheap.
Result<std::string> TextStream::push(int32_t token) {
  tokens_.push_back(token);
  RUNAHEAD_ASSIGN_OR_RETURN(std::string bytes, tokenizer_.decode_bytes(tokens_, skip_special_));
  size_t ready = complete_utf8_prefix(bytes);
  // A replacement character at the end may be an unfinished byte-fallback sequence.
  constexpr std::string_view kReplacement = "\xef\xbf\xbd";
  if (std::string_view(bytes).substr(0, ready).ends_with(kReplacement)) {
    ready -= kReplacement.size();
  }
  if (ready <= emitted_.size() || bytes.compare(0, emitted_.size(), emitted_) != 0)
    return std::string();
  std::string fresh =
      sanitize_utf8(std::string_view(bytes).substr(emitted_.size(), ready - emitted_.size()));
  emitted_ = bytes.substr(0, ready);
  return fresh;
}

Result<std::string> TextStream::finish() {
  RUNAHEAD_ASSIGN_OR_RETURN(std::string bytes, tokenizer_.decode_bytes(tokens_, skip_special_));
  if (bytes.size() <= emitted_.size()) return std::string();
  std::string rest = sanitize_utf8(std::string_view(bytes).substr(emitted_.size()));
  emitted_ = bytes;
  return rest;
}

}  // namespace runahead::text
