#include "model/hf_checkpoint.h"

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/log.h"
#include "model/safetensors.h"

namespace runahead {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr uintmax_t kMaxJsonFileBytes = 64u << 20;

Result<Json> read_json_file(const fs::path& path) {
  std::error_code error;
  const uintmax_t size = fs::file_size(path, error);
  if (error) {
    return make_error(ErrorCode::kNotFound, path.string() + ": " + error.message());
  }
  if (size > kMaxJsonFileBytes) {
    return make_error(ErrorCode::kCorruptData, path.string() + ": " + std::to_string(size) +
                                                   " bytes is too large for a JSON file here");
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return make_error(ErrorCode::kUnavailable, path.string() + ": cannot be read");
  Json json = Json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return make_error(ErrorCode::kCorruptData, path.string() + ": not valid JSON");
  }
  if (!json.is_object()) {
    return make_error(ErrorCode::kCorruptData, path.string() + ": not a JSON object");
  }
  return json;
}

// Typed reads of config.json fields. The first problem is kept and reported by status(), so
// that a config is read straight through and checked once.
class ConfigFields {
 public:
  ConfigFields(const Json& json, std::string file) : json_(json), file_(std::move(file)) {}

  // The first of `keys` that is present and not null, or nullptr.
  const Json* find(std::initializer_list<const char*> keys) const {
    for (const char* key : keys) {
      const auto it = json_.find(key);
      if (it != json_.end() && !it->is_null()) return &*it;
    }
    return nullptr;
  }
  bool has(std::initializer_list<const char*> keys) const { return find(keys) != nullptr; }

  // A non-negative int; `fallback` when absent (absent without one is an error).
  int integer(std::initializer_list<const char*> keys, std::optional<int> fallback = {}) {
    const Json* value = find(keys);
    if (value == nullptr) return missing(keys, fallback).value_or(0);
    if (!value->is_number_unsigned() ||
        value->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int>::max())) {
      fail(*keys.begin(), value->dump() + " is not a non-negative integer");
      return 0;
    }
    return value->get<int>();
  }

  double number(std::initializer_list<const char*> keys, std::optional<double> fallback = {}) {
    const Json* value = find(keys);
    if (value == nullptr) return missing(keys, fallback).value_or(0.0);
    if (!value->is_number()) {
      fail(*keys.begin(), value->dump() + " is not a number");
      return 0.0;
    }
    return value->get<double>();
  }

  bool boolean(std::initializer_list<const char*> keys, bool fallback) {
    const Json* value = find(keys);
    if (value == nullptr) return fallback;
    if (!value->is_boolean()) {
      fail(*keys.begin(), value->dump() + " is not true or false");
      return fallback;
    }
    return value->get<bool>();
  }

  std::string string(std::initializer_list<const char*> keys, std::string fallback) {
    const Json* value = find(keys);
    if (value == nullptr) return fallback;
    if (!value->is_string()) {
      fail(*keys.begin(), value->dump() + " is not a string");
      return fallback;
    }
    return value->get<std::string>();
  }

  // A token id, or a list of them (the first is taken); -1 when absent.
  int32_t token(const char* key) {
    const Json* value = find({key});
    if (value != nullptr && value->is_array()) {
      if (value->empty()) return -1;
      value = &(*value)[0];
    }
    if (value == nullptr) return -1;
    if (!value->is_number_unsigned() ||
        value->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
      fail(key, value->dump() + " is not a token id");
      return -1;
    }
    return value->get<int32_t>();
  }

  void fail(const std::string& key, const std::string& what,
            ErrorCode code = ErrorCode::kInvalidArgument) {
    if (status_.is_ok()) status_ = make_error(code, file_ + ": " + key + " = " + what);
  }
  void unsupported(const std::string& key, const std::string& why) {
    if (status_.is_ok()) {
      status_ = make_error(ErrorCode::kUnsupported, file_ + ": " + key + ": " + why);
    }
  }
  Status status() const { return status_; }

 private:
  template <typename T>
  std::optional<T> missing(std::initializer_list<const char*> keys, std::optional<T> fallback) {
    if (!fallback && status_.is_ok()) {
      status_ = make_error(ErrorCode::kInvalidArgument,
                           file_ + ": required key " + std::string(*keys.begin()) + " is missing");
    }
    return fallback;
  }

  const Json& json_;
  std::string file_;
  Status status_;
};

// Rotary settings: transformers 5 writes "rope_parameters" {rope_type, rope_theta, factor, ...};
// older files write "rope_theta" and "rope_scaling" {type or rope_type, factor, ...}.
void read_rope(ConfigFields& fields, ModelConfig& c) {
  const Json* params = fields.find({"rope_parameters", "rope_scaling"});
  const char* params_key = fields.has({"rope_parameters"}) ? "rope_parameters" : "rope_scaling";
  c.rope_theta = static_cast<float>(fields.number({"rope_theta"}, 10000.0));
  if (params == nullptr) return;
  if (!params->is_object()) {
    fields.fail(params_key, params->dump() + " is not an object");
    return;
  }
  ConfigFields rope(*params, "");
  const std::string prefix = std::string(params_key) + ".";
  auto number = [&](const char* key, double fallback) {
    const Json* value = rope.find({key});
    if (value == nullptr) return fallback;
    if (!value->is_number()) {
      fields.fail(prefix + key, value->dump() + " is not a number");
      return fallback;
    }
    return value->get<double>();
  };
  c.rope_theta = static_cast<float>(number("rope_theta", c.rope_theta));
  const double partial = number("partial_rotary_factor", 1.0);
  if (partial != 1.0) {
    const double dims = partial * c.head_dim;
    const bool whole_even = partial > 0.0 && partial < 1.0 && dims == static_cast<int>(dims) &&
                            static_cast<int>(dims) % 2 == 0;
    if (!whole_even) {
      fields.fail(prefix + "partial_rotary_factor",
                  std::to_string(partial) + " does not give an even number of rotary dims");
      return;
    }
    c.rotary_dim = static_cast<int>(dims);
  }
  const Json* type_value = rope.find({"rope_type", "type"});
  if (type_value != nullptr && !type_value->is_string()) {
    fields.fail(prefix + "rope_type", type_value->dump() + " is not a string");
    return;
  }
  const std::string type = type_value != nullptr ? type_value->get<std::string>() : "default";
  if (type == "default") return;
  if (type != "linear" && type != "llama3") {
    fields.unsupported(prefix + "rope_type",
                       "'" + type + "' is not supported (supported: default, linear, llama3)");
    return;
  }
  c.rope_scaling.factor = static_cast<float>(number("factor", 1.0));
  if (!(c.rope_scaling.factor > 0.0f)) {
    fields.fail(prefix + "factor", std::to_string(c.rope_scaling.factor) + " must be positive");
  }
  if (type == "linear") {
    c.rope_scaling.type = RopeScaling::Type::kLinear;
    return;
  }
  c.rope_scaling.type = RopeScaling::Type::kLlama3;
  c.rope_scaling.low_freq_factor = static_cast<float>(number("low_freq_factor", 1.0));
  c.rope_scaling.high_freq_factor = static_cast<float>(number("high_freq_factor", 4.0));
  if (!(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor)) {
    fields.fail(prefix + "high_freq_factor", "must exceed low_freq_factor");
  }
  // As transformers does: the pretraining length defaults to max_position_embeddings.
  const double original = number("original_max_position_embeddings", c.max_positions);
  if (!(original >= 1.0 && original <= std::numeric_limits<int>::max())) {
    fields.fail(prefix + "original_max_position_embeddings",
                std::to_string(original) + " is not a positive length");
    return;
  }
  c.rope_scaling.original_max_positions = static_cast<int>(original);
}

void read_common(ConfigFields& fields, ModelConfig& c) {
  c.vocab_size = fields.integer({"vocab_size"});
  c.bos_token = fields.token("bos_token_id");
  c.eos_token = fields.token("eos_token_id");
}

// Llama and Mistral (as transformers' configs): "head_dim", else hidden_size //
// num_attention_heads, rounded down; the heads need not span the hidden size either way.
int llama_head_dim(ConfigFields& fields, const ModelConfig& c) {
  if (fields.has({"head_dim"})) return fields.integer({"head_dim"});
  if (c.n_heads <= 0 || c.hidden < c.n_heads) {
    fields.fail("num_attention_heads", std::to_string(c.n_heads) +
                                           " heads do not fit a hidden size of " +
                                           std::to_string(c.hidden));
    return 0;
  }
  return c.hidden / c.n_heads;
}

// Falcon: the heads span the hidden size exactly (transformers refuses anything else).
int falcon_head_dim(ConfigFields& fields, const ModelConfig& c) {
  if (c.n_heads <= 0 || c.hidden % c.n_heads != 0) {
    fields.fail("hidden_size", std::to_string(c.hidden) + " is not a multiple of the " +
                                   std::to_string(c.n_heads) + " attention heads");
    return 0;
  }
  const int head_dim = c.hidden / c.n_heads;
  if (fields.has({"head_dim"}) && fields.integer({"head_dim"}) != head_dim) {
    fields.fail("head_dim", fields.find({"head_dim"})->dump() + " differs from hidden_size / " +
                                "num_attention_heads = " + std::to_string(head_dim));
    return 0;
  }
  return head_dim;
}

// Mistral's sliding window; transformers' Llama reads no such key, and neither is it read here
// for Llama. A window of max_positions or more never binds and is dropped.
void read_sliding_window(ConfigFields& fields, ModelConfig& c) {
  if (!fields.has({"sliding_window"})) return;
  const bool mistral =
      c.architecture_name == "MistralForCausalLM" || c.architecture_name == "mistral";
  if (!mistral) {
    logger("model")->info("{}: sliding_window is not read for this architecture (as transformers)",
                          c.architecture_name);
    return;
  }
  const int window = fields.integer({"sliding_window"});
  if (window == 0) {
    fields.fail("sliding_window", "0 is not a window");
    return;
  }
  if (window >= c.max_positions) return;
  c.sliding_window = window;
  logger("model")->info(
      "{}: sliding_window {}: requests of more positions are refused (not implemented)",
      c.architecture_name, window);
}

void read_llama_config(ConfigFields& fields, ModelConfig& c) {
  c.architecture = Architecture::kLlama;
  c.norm = NormKind::kRms;
  c.activation = Activation::kSwiGlu;
  c.parallel_block = false;
  c.hidden = fields.integer({"hidden_size"});
  c.n_layers = fields.integer({"num_hidden_layers"});
  c.n_heads = fields.integer({"num_attention_heads"});
  c.n_kv_heads = fields.integer({"num_key_value_heads"}, c.n_heads);
  c.head_dim = llama_head_dim(fields, c);
  c.ffn_hidden = fields.integer({"intermediate_size"});
  c.max_positions = fields.integer({"max_position_embeddings"}, 2048);
  c.norm_eps = static_cast<float>(fields.number({"rms_norm_eps"}, 1e-6));
  const std::string act = fields.string({"hidden_act"}, "silu");
  if (act != "silu") fields.unsupported("hidden_act", "'" + act + "' (only silu is supported)");
  c.qkv_bias = c.out_bias = fields.boolean({"attention_bias"}, false);
  if (fields.boolean({"mlp_bias"}, false)) {
    fields.unsupported("mlp_bias", "biases on the gate/up/down projections are not supported");
  }
  read_common(fields, c);
  read_rope(fields, c);
  read_sliding_window(fields, c);
}

void read_falcon_config(ConfigFields& fields, ModelConfig& c) {
  c.architecture = Architecture::kFalcon;
  c.norm = NormKind::kLayer;
  c.activation = Activation::kGelu;
  if (fields.boolean({"alibi"}, false)) {
    fields.unsupported("alibi", "ALiBi position biases are not supported (only rotary)");
  }
  if (fields.boolean({"new_decoder_architecture"}, false)) {
    fields.unsupported("new_decoder_architecture",
                       "the Falcon-40B/180B layout (grouped KV, two layer norms) is not supported");
  }
  if (fields.boolean({"apply_residual_connection_post_layernorm"}, false)) {
    fields.unsupported("apply_residual_connection_post_layernorm",
                       "a residual taken after the layer norm is not supported");
  }
  const bool multi_query = fields.boolean({"multi_query"}, true);
  if (!multi_query) {
    fields.unsupported("multi_query",
                       "false (per-head interleaved query_key_value) is not supported");
  }
  c.parallel_block = fields.boolean({"parallel_attn"}, true);
  c.hidden = fields.integer({"hidden_size", "n_embed"});
  c.n_layers = fields.integer({"num_hidden_layers", "n_layer"});
  c.n_heads = fields.integer({"num_attention_heads", "n_head"});
  c.n_kv_heads = 1;
  c.head_dim = falcon_head_dim(fields, c);
  c.ffn_hidden = fields.integer({"ffn_hidden_size"}, 4 * c.hidden);
  c.max_positions = fields.integer({"max_position_embeddings"}, 2048);
  c.norm_eps = static_cast<float>(fields.number({"layer_norm_epsilon"}, 1e-5));
  const std::string act = fields.string({"activation"}, "gelu");
  if (act != "gelu") fields.unsupported("activation", "'" + act + "' (only gelu is supported)");
  c.qkv_bias = c.out_bias = c.mlp_bias = fields.boolean({"bias"}, false);
  read_common(fields, c);
  read_rope(fields, c);
}

// Pairs of (canonical name, Hugging Face name) that the config calls for, in a stable order.
using NamePairs = std::vector<std::pair<std::string, std::string>>;

NamePairs llama_names(const ModelConfig& c) {
  NamePairs names = {{"token_embedding", "model.embed_tokens.weight"},
                     {"final_norm", "model.norm.weight"}};
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string ours = "layers." + std::to_string(l) + ".";
    const std::string hf = "model.layers." + std::to_string(l) + ".";
    names.insert(names.end(), {{ours + "attn_norm", hf + "input_layernorm.weight"},
                               {ours + "wq", hf + "self_attn.q_proj.weight"},
                               {ours + "wk", hf + "self_attn.k_proj.weight"},
                               {ours + "wv", hf + "self_attn.v_proj.weight"},
                               {ours + "wo", hf + "self_attn.o_proj.weight"},
                               {ours + "mlp_norm", hf + "post_attention_layernorm.weight"},
                               {ours + "w_gate", hf + "mlp.gate_proj.weight"},
                               {ours + "w_up", hf + "mlp.up_proj.weight"},
                               {ours + "w_down", hf + "mlp.down_proj.weight"}});
    if (c.qkv_bias) {
      names.insert(names.end(), {{ours + "bq", hf + "self_attn.q_proj.bias"},
                                 {ours + "bk", hf + "self_attn.k_proj.bias"},
                                 {ours + "bv", hf + "self_attn.v_proj.bias"}});
    }
    if (c.out_bias) names.emplace_back(ours + "bo", hf + "self_attn.o_proj.bias");
  }
  return names;
}

NamePairs falcon_names(const ModelConfig& c) {
  NamePairs names = {{"token_embedding", "transformer.word_embeddings.weight"},
                     {"final_norm", "transformer.ln_f.weight"},
                     {"final_norm_bias", "transformer.ln_f.bias"}};
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string ours = "layers." + std::to_string(l) + ".";
    const std::string hf = "transformer.h." + std::to_string(l) + ".";
    // For multi-query Falcon the fused rows are already [q heads | k | v].
    names.insert(names.end(), {{ours + "attn_norm", hf + "input_layernorm.weight"},
                               {ours + "attn_norm_bias", hf + "input_layernorm.bias"},
                               {ours + "wqkv", hf + "self_attention.query_key_value.weight"},
                               {ours + "wo", hf + "self_attention.dense.weight"},
                               {ours + "w_up", hf + "mlp.dense_h_to_4h.weight"},
                               {ours + "w_down", hf + "mlp.dense_4h_to_h.weight"}});
    if (!c.parallel_block) {
      names.insert(names.end(), {{ours + "mlp_norm", hf + "post_attention_layernorm.weight"},
                                 {ours + "mlp_norm_bias", hf + "post_attention_layernorm.bias"}});
    }
    if (c.qkv_bias) names.emplace_back(ours + "bqkv", hf + "self_attention.query_key_value.bias");
    if (c.out_bias) names.emplace_back(ours + "bo", hf + "self_attention.dense.bias");
    if (c.mlp_bias) {
      names.insert(names.end(), {{ours + "b_up", hf + "mlp.dense_h_to_4h.bias"},
                                 {ours + "b_down", hf + "mlp.dense_4h_to_h.bias"}});
    }
  }
  return names;
}

// The architectures read here, by config "architectures" or, failing that, "model_type".
enum class Family { kLlama, kFalcon };

std::optional<Family> family_of(const std::string& name) {
  static const std::map<std::string, Family> known = {{"LlamaForCausalLM", Family::kLlama},
                                                      {"MistralForCausalLM", Family::kLlama},
                                                      {"llama", Family::kLlama},
                                                      {"mistral", Family::kLlama},
                                                      {"FalconForCausalLM", Family::kFalcon},
                                                      {"RWForCausalLM", Family::kFalcon},
                                                      {"falcon", Family::kFalcon},
                                                      {"RefinedWebModel", Family::kFalcon},
                                                      {"RefinedWeb", Family::kFalcon}};
  const auto it = known.find(name);
  return it == known.end() ? std::nullopt : std::optional<Family>(it->second);
}

// Where each tensor of the checkpoint lives.
struct TensorFiles {
  std::vector<std::shared_ptr<const SafetensorsFile>> files;
  std::map<std::string, const SafetensorsFile*> location;
};

Result<TensorFiles> open_tensor_files(const fs::path& dir) {
  TensorFiles out;
  const fs::path index_path = dir / "model.safetensors.index.json";
  const fs::path single_path = dir / "model.safetensors";
  std::error_code error;
  if (fs::exists(index_path, error)) {
    RUNAHEAD_ASSIGN_OR_RETURN(Json index, read_json_file(index_path));
    const auto map_it = index.find("weight_map");
    if (map_it == index.end() || !map_it->is_object()) {
      return make_error(ErrorCode::kCorruptData,
                        index_path.string() + ": weight_map is missing or not an object");
    }
    std::map<std::string, const SafetensorsFile*> shards;
    for (const auto& [tensor, shard_value] : map_it->items()) {
      if (!shard_value.is_string()) {
        return make_error(ErrorCode::kCorruptData, index_path.string() + ": weight_map entry " +
                                                       tensor + " is not a file name");
      }
      const std::string shard = shard_value.get<std::string>();
      // Shards are plain file names beside the index; nothing may point elsewhere.
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..") {
        return make_error(ErrorCode::kCorruptData, index_path.string() + ": tensor " + tensor +
                                                       " names shard '" + shard +
                                                       "', which is not a file name");
      }
      auto shard_it = shards.find(shard);
      if (shard_it == shards.end()) {
        const fs::path shard_path = dir / shard;
        if (!fs::exists(shard_path, error)) {
          return make_error(ErrorCode::kNotFound, index_path.string() + ": shard " +
                                                      shard_path.string() + " (holding " + tensor +
                                                      ") does not exist");
        }
        RUNAHEAD_ASSIGN_OR_RETURN(auto file, SafetensorsFile::open(shard_path.string()));
        out.files.push_back(file);
        shard_it = shards.emplace(shard, file.get()).first;
      }
      if (shard_it->second->find(tensor) == nullptr) {
        return make_error(ErrorCode::kCorruptData, index_path.string() + ": tensor " + tensor +
                                                       " is listed in shard " + shard +
                                                       ", which does not contain it");
      }
      out.location[tensor] = shard_it->second;
    }
    return out;
  }
  if (!fs::exists(single_path, error)) {
    return make_error(ErrorCode::kNotFound, dir.string() +
                                                ": neither model.safetensors nor "
                                                "model.safetensors.index.json is present");
  }
  RUNAHEAD_ASSIGN_OR_RETURN(auto file, SafetensorsFile::open(single_path.string()));
  for (const auto& [name, tensor] : file->tensors()) out.location[name] = file.get();
  out.files.push_back(std::move(file));
  return out;
}

}  // namespace

Result<HostModel> load_hf_checkpoint(const std::string& directory) {
  const fs::path dir(directory);
  const fs::path config_path = dir / "config.json";
  std::error_code error;
  if (!fs::exists(config_path, error)) {
    return make_error(
        ErrorCode::kNotFound,
        config_path.string() + " is missing: not a Hugging Face checkpoint directory");
  }
  RUNAHEAD_ASSIGN_OR_RETURN(Json json, read_json_file(config_path));
  ConfigFields fields(json, config_path.string());

  // The architecture: the first entry of "architectures", else "model_type".
  std::string name;
  if (const Json* list = fields.find({"architectures"}); list != nullptr) {
    if (!list->is_array() || list->empty() || !(*list)[0].is_string()) {
      return make_error(ErrorCode::kInvalidArgument, config_path.string() + ": architectures = " +
                                                         list->dump() + " is not a list of names");
    }
    name = (*list)[0].get<std::string>();
  } else {
    name = fields.string({"model_type"}, "");
    RUNAHEAD_RETURN_IF_ERROR(fields.status());
  }
  if (name.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      config_path.string() + ": names no architecture (architectures/model_type)");
  }
  const std::optional<Family> family = family_of(name);
  if (!family) {
    return make_error(ErrorCode::kUnsupported,
                      config_path.string() + ": architecture " + name +
                          " is not supported (supported: LlamaForCausalLM, MistralForCausalLM, "
                          "FalconForCausalLM)");
  }

  HostModel host;
  host.path = directory;
  ModelConfig& c = host.config;
  c.architecture_name = name;
  if (*family == Family::kLlama) {
    read_llama_config(fields, c);
  } else {
    read_falcon_config(fields, c);
  }
  RUNAHEAD_RETURN_IF_ERROR(fields.status());
  if (Status valid = c.validate(); !valid.is_ok()) {
    return make_error(valid.code(), config_path.string() + ": " + valid.message());
  }

  RUNAHEAD_ASSIGN_OR_RETURN(TensorFiles files, open_tensor_files(dir));
  for (const auto& file : files.files) host.keepalive.push_back(file);

  NamePairs names = *family == Family::kLlama ? llama_names(c) : falcon_names(c);
  // The LM head: tied when config says so; when it does not say, tied when the file has none
  // (transformers leaves a tied head out of the file).
  const bool has_head = files.location.count("lm_head.weight") > 0;
  if (const Json* tie = fields.find({"tie_word_embeddings"}); tie != nullptr) {
    c.tied_embeddings = fields.boolean({"tie_word_embeddings"}, false);
    RUNAHEAD_RETURN_IF_ERROR(fields.status());
  } else {
    c.tied_embeddings = !has_head;
  }
  if (!c.tied_embeddings) names.emplace_back("lm_head", "lm_head.weight");

  std::set<std::string> used;
  for (const auto& [ours, hf] : names) {
    const auto it = files.location.find(hf);
    if (it == files.location.end()) {
      return make_error(ErrorCode::kNotFound, directory + ": tensor " + hf + " (" + ours +
                                                  ") is missing from the checkpoint");
    }
    RUNAHEAD_ASSIGN_OR_RETURN(HostTensor tensor, it->second->host_tensor(hf));
    host.tensors[ours] = std::move(tensor);
    used.insert(hf);
  }
  std::vector<std::string> ignored;
  for (const auto& [hf, file] : files.location) {
    if (used.count(hf) == 0) ignored.push_back(hf);
  }
  if (!ignored.empty()) {
    std::string list;
    for (size_t i = 0; i < ignored.size() && i < 4; ++i) list += (i ? ", " : "") + ignored[i];
    if (ignored.size() > 4) list += ", ...";
    logger("model")->info("{}: {} tensor(s) not used by {}: {}", directory, ignored.size(), name,
                          list);
  }
  logger("model")->debug("{}: {} ({} layers, hidden {}, {} heads / {} kv heads, vocab {})",
                         directory, name, c.n_layers, c.hidden, c.n_heads, c.n_kv_heads,
                         c.vocab_size);
  return host;
}

}  // namespace runahead
