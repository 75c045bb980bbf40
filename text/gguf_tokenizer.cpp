// The tokenizer stored in GGUF metadata (tokenizer.ggml.*).
#include "model/gguf.h"
#include "text/bpe_tokenizer.h"
#include "text/sentencepiece_tokenizer.h"
#include "text/tokenizer.h"

namespace runahead::text {
namespace {

// llama.cpp's token types.
constexpr int64_t kTokenControl = 3;
constexpr int64_t kTokenUserDefined = 4;

Result<std::unique_ptr<Tokenizer>> load_gguf_bpe(const GgufFile& file) {
  const std::string& path = file.path();
  BpeVocabulary v;
  RUNAHEAD_ASSIGN_OR_RETURN(v.tokens, file.get_string_array("tokenizer.ggml.tokens"));
  RUNAHEAD_ASSIGN_OR_RETURN(std::vector<std::string> merges,
                            file.get_string_array("tokenizer.ggml.merges"));
  for (size_t i = 0; i < merges.size(); ++i) {
    const size_t space = merges[i].find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == merges[i].size()) {
      return make_error(ErrorCode::kCorruptData, path + ": tokenizer.ggml.merges[" +
                                                     std::to_string(i) + "] '" + merges[i] +
                                                     "' is not two tokens separated by a space");
    }
    v.merges.emplace_back(merges[i].substr(0, space), merges[i].substr(space + 1));
  }
  v.special.assign(v.tokens.size(), false);
  v.added.assign(v.tokens.size(), false);
  if (file.find("tokenizer.ggml.token_type")) {
    RUNAHEAD_ASSIGN_OR_RETURN(std::vector<int64_t> types,
                              file.get_int_array("tokenizer.ggml.token_type"));
    if (types.size() != v.tokens.size()) {
      return make_error(ErrorCode::kCorruptData, path + ": tokenizer.ggml.token_type has " +
                                                     std::to_string(types.size()) +
                                                     " entries but tokenizer.ggml.tokens has " +
                                                     std::to_string(v.tokens.size()));
    }
    for (size_t i = 0; i < types.size(); ++i) {
      v.special[i] = types[i] == kTokenControl;
      v.added[i] = types[i] == kTokenControl || types[i] == kTokenUserDefined;
    }
  }
  RUNAHEAD_ASSIGN_OR_RETURN(int64_t bos, file.get_int_or("tokenizer.ggml.bos_token_id", -1));
  RUNAHEAD_ASSIGN_OR_RETURN(int64_t eos, file.get_int_or("tokenizer.ggml.eos_token_id", -1));
  v.bos = static_cast<int32_t>(bos);
  v.eos = static_cast<int32_t>(eos);
  RUNAHEAD_ASSIGN_OR_RETURN(v.add_eos, file.get_bool_or("tokenizer.ggml.add_eos_token", false));
  RUNAHEAD_ASSIGN_OR_RETURN(v.add_prefix_space,
                            file.get_bool_or("tokenizer.ggml.add_space_prefix", false));
  std::string pre_name = "default";
  if (file.find("tokenizer.ggml.pre")) {
    RUNAHEAD_ASSIGN_OR_RETURN(pre_name, file.get_string("tokenizer.ggml.pre"));
  }
  auto pre = PreTokenizer::for_gguf_pre(pre_name);
  if (!pre) return make_error(pre.error().code, path + ": " + pre.error().message);
  // Llama-3 vocabularies take pieces that are whole tokens as they are, and start with BOS
  // unless the file says otherwise (llama.cpp's defaults for these pre-tokenizers).
  const bool llama3 = pre_name == "llama-bpe" || pre_name == "llama3" || pre_name == "llama-v3" ||
                      pre_name == "falcon3";
  v.ignore_merges = llama3;
  RUNAHEAD_ASSIGN_OR_RETURN(v.add_bos, file.get_bool_or("tokenizer.ggml.add_bos_token", llama3));
  v.family = "byte-level BPE (" + pre_name + ")";
  return make_bpe_tokenizer(std::move(v), std::move(pre).value(), path);
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> load_gguf_tokenizer(const GgufFile& file) {
  RUNAHEAD_ASSIGN_OR_RETURN(std::string model, file.get_string("tokenizer.ggml.model"));
  if (model == "gpt2") return load_gguf_bpe(file);
  if (model == "llama") return load_gguf_sentencepiece(file);
  return make_error(ErrorCode::kUnsupported,
                    file.path() + ": tokenizer.ggml.model '" + model +
                        "' is not supported (supported: gpt2 byte-level BPE, llama SentencePiece)");
}

}  // namespace runahead::text
