// Turns generated token ids into text as they arrive: whole UTF-8 characters only, so a
// character split across byte-level tokens is printed once its last byte is known.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "text/tokenizer.h"

namespace runahead::text {

class TextStream {
 public:
  // `skip_special` leaves control tokens (EOS, chat markers) out of the text.
  explicit TextStream(const Tokenizer& tokenizer, bool skip_special = true)
      : tokenizer_(tokenizer), skip_special_(skip_special) {}

  // Adds a token; returns the text that became complete (possibly empty).
  [[nodiscard]] Result<std::string> push(int32_t token);
  // What is still held back, with ill-formed bytes replaced by U+FFFD.
  [[nodiscard]] Result<std::string> finish();
  // Everything emitted so far.
  const std::string& text() const { return emitted_; }

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::vector<int32_t> tokens_;
  std::string emitted_;
};

}  // namespace runahead::text
