// Hugging Face tokenizer.json files of byte-level BPE models (GPT-2, Llama-3, SmolLM2, Qwen2).
#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "text/bpe_tokenizer.h"
#include "text/tokenizer.h"

namespace runahead::text {
namespace {

using nlohmann::json;

Error unsupported(const std::string& path, const std::string& what) {
  return make_error(ErrorCode::kUnsupported, path + ": " + what);
}

// Translates the pre_tokenizer tree into splits; `byte_level` is set when a ByteLevel step
// is present (the vocabulary is then in the byte-to-char form).
Status add_pre_tokenizer(const std::string& path, const json& node, PreTokenizer& pre,
                         BpeVocabulary& v, bool& byte_level) {
  if (node.is_null()) return Status::ok();
  const std::string type = node.value("type", "");
  if (type == "Sequence") {
    for (const json& step : node.at("pretokenizers")) {
      RUNAHEAD_RETURN_IF_ERROR(add_pre_tokenizer(path, step, pre, v, byte_level));
    }
    return Status::ok();
  }
  if (type == "ByteLevel") {
    byte_level = true;
    v.add_prefix_space = node.value("add_prefix_space", false);
    if (node.value("use_regex", true)) return pre.add_split(kGpt2Pattern);
    return Status::ok();
  }
  if (type == "Digits") {
    return pre.add_split(node.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
  }
  if (type == "Split") {
    if (node.value("behavior", "") != "Isolated" || node.value("invert", false)) {
      return unsupported(path, "pre_tokenizer Split with behavior '" + node.value("behavior", "") +
                                   "' (only Isolated, not inverted, is supported)");
    }
    const json& pattern = node.at("pattern");
    if (pattern.contains("Regex")) return pre.add_split(pattern.at("Regex").get<std::string>());
    if (pattern.contains("String")) {
      return pre.add_split("\\Q" + pattern.at("String").get<std::string>() + "\\E");
    }
    return unsupported(path, "pre_tokenizer Split pattern without Regex or String");
  }
  return unsupported(
      path, "pre_tokenizer type '" + type + "' (supported: Sequence, ByteLevel, Digits, Split)");
}

// Ids index the vocabulary, so they are checked before anything is sized by them (and
// converting a float out of range to an integer would be undefined).
constexpr int64_t kMaxVocabulary = int64_t{1} << 24;

Result<size_t> read_token_id(const std::string& path, const std::string& token, const json& id) {
  if (!id.is_number_integer()) {
    return make_error(ErrorCode::kCorruptData,
                      path + ": token '" + token + "' has id " + id.dump() + ", not an integer");
  }
  const bool in_range = id.is_number_unsigned()
                            ? id.get<uint64_t>() < static_cast<uint64_t>(kMaxVocabulary)
                            : id.get<int64_t>() >= 0 && id.get<int64_t>() < kMaxVocabulary;
  if (!in_range) {
    return make_error(ErrorCode::kCorruptData, path + ": token '" + token + "' has id " +
                                                   id.dump() + ", outside [0, " +
                                                   std::to_string(kMaxVocabulary) + ")");
  }
  return static_cast<size_t>(id.get<int64_t>());
}

// tokenizer_config.json beside the file names BOS/EOS as strings or {"content": ...}.
std::optional<std::string> config_token(const json& config, const char* key) {
  if (!config.contains(key)) return std::nullopt;
  const json& value = config.at(key);
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content")) return value.at("content").get<std::string>();
  return std::nullopt;
}

Result<std::unique_ptr<Tokenizer>> build_tokenizer(const std::string& path, const json& root,
                                                   const json& config) {
  const json& model = root.at("model");
  if (model.value("type", "BPE") != "BPE") {
    return unsupported(path, "model type '" + model.value("type", "") +
                                 "' (only byte-level BPE tokenizer.json files are supported; "
                                 "use tokenizer.model for SentencePiece)");
  }
  if (root.contains("normalizer") && !root.at("normalizer").is_null()) {
    return unsupported(path, "normalizer '" + root.at("normalizer").value("type", "") +
                                 "' (only tokenizers without a normalizer are supported)");
  }
  BpeVocabulary v;
  const json& vocab = model.at("vocab");
  const json added = root.value("added_tokens", json::array());
  size_t size = 0;
  for (const auto& [text, id] : vocab.items()) {
    RUNAHEAD_ASSIGN_OR_RETURN(const size_t index, read_token_id(path, text, id));
    size = std::max(size, index + 1);
  }
  for (const json& token : added) {
    RUNAHEAD_ASSIGN_OR_RETURN(
        const size_t index,
        read_token_id(path, token.at("content").get<std::string>(), token.at("id")));
    size = std::max(size, index + 1);
  }
  if (size == 0) return make_error(ErrorCode::kCorruptData, path + ": the vocabulary is empty");
  v.tokens.resize(size);
  v.special.assign(v.tokens.size(), false);
  v.added.assign(v.tokens.size(), false);
  for (const auto& [text, id] : vocab.items()) {
    v.tokens[static_cast<size_t>(id.get<int64_t>())] = text;
  }
  for (const json& token : added) {
    const auto id = static_cast<size_t>(token.at("id").get<int64_t>());
    v.tokens[id] = token.at("content").get<std::string>();
    v.added[id] = true;
    v.special[id] = token.value("special", false);
  }
  for (const json& merge : model.value("merges", json::array())) {
    if (merge.is_string()) {
      const std::string text = merge.get<std::string>();
      const size_t space = text.find(' ');
      if (space == std::string::npos) {
        return make_error(ErrorCode::kCorruptData, path + ": merge '" + text + "' has no space");
      }
      v.merges.emplace_back(text.substr(0, space), text.substr(space + 1));
    } else {
      v.merges.emplace_back(merge.at(0).get<std::string>(), merge.at(1).get<std::string>());
    }
  }
  v.ignore_merges = model.value("ignore_merges", false);
  if (model.value("byte_fallback", false)) {
    return unsupported(path, "BPE with byte_fallback (SentencePiece-style; use tokenizer.model)");
  }

  PreTokenizer pre;
  bool byte_level = false;
  RUNAHEAD_RETURN_IF_ERROR(
      add_pre_tokenizer(path, root.value("pre_tokenizer", json()), pre, v, byte_level));
  if (root.contains("decoder") && root.at("decoder").value("type", "") == "ByteLevel") {
    byte_level = true;
  }
  if (!byte_level) return unsupported(path, "a BPE tokenizer that is not byte-level");

  auto id_of = [&](const std::string& text) -> int32_t {
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      if (v.tokens[i] == text) return static_cast<int32_t>(i);
    }
    return -1;
  };
  // BOS/EOS: the post-processor's template, then tokenizer_config.json.
  const json post = root.value("post_processor", json());
  if (post.is_object() && post.value("type", "") == "TemplateProcessing") {
    const json single = post.value("single", json::array());
    for (size_t i = 0; i < single.size(); ++i) {
      if (!single[i].contains("SpecialToken")) continue;
      const int32_t id = id_of(single[i].at("SpecialToken").at("id").get<std::string>());
      if (id < 0) continue;
      if (i == 0) {
        v.bos = id;
        v.add_bos = true;
      } else {
        v.eos = id;
        v.add_eos = true;
      }
    }
  }
  if (auto bos = config_token(config, "bos_token"); bos && v.bos < 0) v.bos = id_of(*bos);
  if (auto eos = config_token(config, "eos_token")) v.eos = id_of(*eos);
  if (config.contains("add_bos_token") && config.at("add_bos_token").is_boolean()) {
    v.add_bos = config.at("add_bos_token").get<bool>();
  }
  v.family = "byte-level BPE (tokenizer.json)";
  return make_bpe_tokenizer(std::move(v), std::move(pre), path);
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> load_tokenizer_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, path + ": cannot open");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string config_text;
  const auto config_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  if (std::ifstream config_in(config_path, std::ios::binary); config_in) {
    config_text.assign(std::istreambuf_iterator<char>(config_in), std::istreambuf_iterator<char>());
  }
  return parse_tokenizer_json(text, config_text, path);
}

Result<std::unique_ptr<Tokenizer>> parse_tokenizer_json(std::string_view json_text,
                                                        std::string_view config_text,
                                                        const std::string& source) {
  json root = json::parse(json_text, nullptr, false);
  if (root.is_discarded() || !root.is_object()) {
    return make_error(ErrorCode::kCorruptData, source + ": not valid JSON");
  }
  json config = json::object();
  if (!config_text.empty()) {
    config = json::parse(config_text, nullptr, false);
    if (config.is_discarded() || !config.is_object()) config = json::object();
  }
  try {
    return build_tokenizer(source, root, config);
  } catch (const json::exception& error) {
    // Fields of the wrong type or missing: the file contradicts the format.
    return make_error(ErrorCode::kCorruptData, source + ": " + error.what());
  }
}

}  // namespace runahead::text
