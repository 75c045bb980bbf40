// A Hugging Face tokenizer.json (text/tokenizer.h parse_tokenizer_json, what
// load_tokenizer_json reads from a file): the input up to its first NUL byte is the
// tokenizer.json text, the rest the tokenizer_config.json beside it. A tokenizer that loads
// encodes a short text to ids inside its vocabulary and decodes them again; ids outside it
// are refused.
#include <array>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view json = input.substr(0, nul);
  const std::string_view config = nul == std::string_view::npos ? "" : input.substr(nul + 1);
  auto tokenizer = runahead::text::parse_tokenizer_json(json, config, "fuzz/tokenizer.json");
  if (!tokenizer.is_ok()) return 0;
  const runahead::text::Tokenizer& t = **tokenizer;
  const int32_t vocab = t.vocab_size();
  RUNAHEAD_FUZZ_CHECK(vocab > 0, "a tokenizer loaded with an empty vocabulary");
  for (const bool add_special : {true, false}) {
    auto ids = t.encode("Hello, world! It's 2024: caf\xc3\xa9 <|im_start|>user\n  x", add_special);
    if (!ids.is_ok()) continue;
    for (const int32_t id : *ids) {
      RUNAHEAD_FUZZ_CHECK(id >= 0 && id < vocab, "an encoded id lies outside the vocabulary");
    }
    (void)t.decode(*ids);
    (void)t.decode_bytes(*ids, /*skip_special=*/true);
  }
  const std::array<int32_t, 4> edges{0, vocab - 1, vocab, -1};
  auto decoded = t.decode_bytes(std::span<const int32_t>(edges.data(), 2));
  RUNAHEAD_FUZZ_CHECK(decoded.is_ok(), "ids inside the vocabulary do not decode");
  RUNAHEAD_FUZZ_CHECK(!t.decode_bytes(std::span<const int32_t>(edges.data() + 2, 1)).is_ok() &&
                          !t.decode_bytes(std::span<const int32_t>(edges.data() + 3, 1)).is_ok(),
                      "an id outside the vocabulary decodes");
  (void)t.token_id("<|im_end|>");
  (void)t.is_special(0);
  return 0;
}
