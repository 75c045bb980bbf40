// Byte-level BPE (GPT-2, Llama-3, SmolLM2, Qwen2): bytes mapped to printable characters,
// pre-tokenized by the family's regex, then merged by rank.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "text/pretokenizer.h"
#include "text/tokenizer.h"

namespace runahead::text {

struct BpeVocabulary {
  std::vector<std::string> tokens;  // id -> text; ordinary tokens in the byte-to-char form
  std::vector<std::pair<std::string, std::string>> merges;  // highest priority first
  std::vector<bool> special;  // control tokens (BOS, EOS, chat markers): skippable in decode
  std::vector<bool> added;    // matched verbatim in the input before pre-tokenization
  int32_t bos = -1;
  int32_t eos = -1;
  bool add_bos = false;
  bool add_eos = false;
  bool ignore_merges = false;     // a piece that is itself a token is not merged (Llama-3)
  bool add_prefix_space = false;  // a space before text that does not start with one
  std::string family = "byte-level BPE";
};

// Checks the vocabulary (ids in range, merges made of tokens) and builds the tokenizer;
// `source` (a file name) prefixes error messages.
[[nodiscard]] Result<std::unique_ptr<Tokenizer>> make_bpe_tokenizer(BpeVocabulary vocabulary,
                                                                    PreTokenizer pre,
                                                                    const std::string& source);

// The GPT-2 map from bytes to printable characters (UTF-8), and its inverse.
const std::vector<std::string>& byte_to_char_table();

}  // namespace runahead::text
