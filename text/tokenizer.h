// Text to token ids and back, behind one interface for every tokenizer family:
// byte-level BPE (GPT-2, Llama-3, SmolLM2, Qwen2) from GGUF metadata or a Hugging Face
// tokenizer.json, and SentencePiece models (Llama-2) through libsentencepiece.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace runahead {
class GgufFile;
}

namespace runahead::text {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Encodes UTF-8 text. Special and added tokens written in the text (such as <|im_start|>)
  // become their ids; `add_special` adds what the model expects around a sequence (BOS where
  // the model asks for it). Text that is not valid UTF-8 is an error naming the byte offset.
  [[nodiscard]] virtual Result<std::vector<int32_t>> encode(std::string_view text,
                                                            bool add_special = true) const = 0;

  // The bytes the ids stand for, concatenated; may end inside a UTF-8 character.
  // `skip_special` leaves out control tokens (BOS, EOS, chat markers). Ids outside the
  // vocabulary are an error naming the id.
  [[nodiscard]] virtual Result<std::string> decode_bytes(std::span<const int32_t> ids,
                                                         bool skip_special = false) const = 0;

  // decode_bytes with each ill-formed UTF-8 sequence replaced by U+FFFD.
  [[nodiscard]] Result<std::string> decode(std::span<const int32_t> ids,
                                           bool skip_special = false) const;

  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_token() const = 0;  // -1 when none
  virtual int32_t eos_token() const = 0;  // -1 when none
  // The id of a token given by its text (special tokens such as "<|im_end|>" included).
  virtual std::optional<int32_t> token_id(std::string_view token) const = 0;
  virtual bool is_special(int32_t id) const = 0;
  virtual std::string family() const = 0;  // "byte-level BPE (smollm)", "sentencepiece"
};

// The tokenizer stored in a GGUF file's tokenizer.ggml.* metadata.
[[nodiscard]] Result<std::unique_ptr<Tokenizer>> load_gguf_tokenizer(const GgufFile& file);
// A Hugging Face tokenizer.json (byte-level BPE models).
[[nodiscard]] Result<std::unique_ptr<Tokenizer>> load_tokenizer_json(const std::string& path);
// The same from the text of a tokenizer.json and of the tokenizer_config.json beside it (empty
// when there is none); `source` names the input in errors.
[[nodiscard]] Result<std::unique_ptr<Tokenizer>> parse_tokenizer_json(std::string_view json_text,
                                                                      std::string_view config_text,
                                                                      const std::string& source);
// A SentencePiece tokenizer.model; `add_bos` as the model expects (Llama-2: true).
[[nodiscard]] Result<std::unique_ptr<Tokenizer>> load_sentencepiece(const std::string& path,
                                                                    bool add_bos = true);
// The tokenizer of a model path: a .gguf file (its metadata), a checkpoint directory
// (tokenizer.json, else tokenizer.model), or a tokenizer.json / tokenizer.model file itself.
[[nodiscard]] Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& model_path);

}  // namespace runahead::text
