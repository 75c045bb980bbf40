// SentencePiece models (Llama-2 and kin) through libsentencepiece: from a tokenizer.model
// file, or rebuilt from a GGUF file's tokenizer.ggml.* metadata (model "llama").
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "text/tokenizer.h"

namespace runahead::text {

// The serialized ModelProto is what libsentencepiece loads; GGUF files carry its pieces,
// scores and types, from which an equivalent BPE model with byte fallback is rebuilt.
[[nodiscard]] Result<std::unique_ptr<Tokenizer>> load_gguf_sentencepiece(const GgufFile& file);

// Loads a serialized ModelProto (the bytes of a tokenizer.model); `source` names it in errors.
[[nodiscard]] Result<std::unique_ptr<Tokenizer>> make_sentencepiece_tokenizer(
    const std::string& serialized_model, const std::string& source, bool add_bos, bool add_eos);

}  // namespace runahead::text
