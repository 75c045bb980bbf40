#include "text/tokenizer.h"

#include <filesystem>
#include <fstream>

#include "model/gguf.h"
#include "text/utf8.h"

namespace runahead::text {

Result<std::string> Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  RUNAHEAD_ASSIGN_OR_RETURN(std::string bytes, decode_bytes(ids, skip_special));
  return sanitize_utf8(bytes);
}

Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& model_path) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (fs::is_directory(model_path, error)) {
    const fs::path dir(model_path);
    const bool has_model = fs::exists(dir / "tokenizer.model");
    if (fs::exists(dir / "tokenizer.json")) {
      auto tokenizer = load_tokenizer_json(dir / "tokenizer.json");
      // Llama-2 style directories carry both; their tokenizer.json is not byte-level BPE.
      if (tokenizer || !has_model || tokenizer.error().code != ErrorCode::kUnsupported) {
        return tokenizer;
      }
    }
    if (has_model) return load_sentencepiece(dir / "tokenizer.model");
    return make_error(ErrorCode::kNotFound,
                      model_path + ": no tokenizer.json or tokenizer.model in the directory");
  }
  const std::string name = fs::path(model_path).filename().string();
  if (name.ends_with(".json")) return load_tokenizer_json(model_path);
  if (name.ends_with(".model")) return load_sentencepiece(model_path);
  RUNAHEAD_ASSIGN_OR_RETURN(std::shared_ptr<const GgufFile> file, GgufFile::open(model_path));
  return load_gguf_tokenizer(*file);
}

}  // namespace runahead::text
