// Pre-tokenization: the regular-expression splits a byte-level BPE tokenizer applies before
// merging, exactly as each model family defines them, run through PCRE2 (UTF + Unicode
// properties) so that \p{L}, \p{N} and \s mean what the reference tokenizers mean.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace runahead::text {

// The GPT-2 byte-level pattern (Hugging Face ByteLevel with use_regex).
extern const char* const kGpt2Pattern;
// Llama-3's pattern (tokenizer.ggml.pre = llama-bpe).
extern const char* const kLlama3Pattern;
// Qwen2's pattern.
extern const char* const kQwen2Pattern;

// A sequence of splits; each turns every piece into its matches and the text between them
// (Hugging Face's "Isolated" behaviour), so pieces always concatenate back to the input.
class PreTokenizer {
 public:
  PreTokenizer();
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;

  // Appends a split by `pattern`; an error names the pattern and PCRE2's complaint.
  [[nodiscard]] Status add_split(const std::string& pattern);
  // The splits llama.cpp uses for a tokenizer.ggml.pre value; unknown names are an error.
  [[nodiscard]] static Result<PreTokenizer> for_gguf_pre(const std::string& name);

  // `text` must be valid UTF-8.
  [[nodiscard]] Result<std::vector<std::string_view>> split(std::string_view text) const;
  bool empty() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace runahead::text
