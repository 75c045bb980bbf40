#include "tests/support/hf_export.h"

#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/safetensors.h"

namespace runahead::testing {
namespace {

using Json = nlohmann::json;

Json rope_json(const ModelConfig& c, const HfExportOptions& options) {
  Json scaling = Json::object();
  switch (c.rope_scaling.type) {
    case RopeScaling::Type::kNone:
      break;
    case RopeScaling::Type::kLinear:
      scaling = {{"rope_type", "linear"}, {"factor", c.rope_scaling.factor}};
      break;
    case RopeScaling::Type::kLlama3:
      scaling = {{"rope_type", "llama3"},
                 {"factor", c.rope_scaling.factor},
                 {"low_freq_factor", c.rope_scaling.low_freq_factor},
                 {"high_freq_factor", c.rope_scaling.high_freq_factor},
                 {"original_max_position_embeddings", c.rope_scaling.original_max_positions}};
      break;
  }
  Json out = Json::object();
  if (options.rope_parameters) {
    Json params = scaling.empty() ? Json{{"rope_type", "default"}} : scaling;
    params["rope_theta"] = c.rope_theta;
    out["rope_parameters"] = params;
  } else {
    out["rope_theta"] = c.rope_theta;
    if (!scaling.empty()) out["rope_scaling"] = scaling;
  }
  return out;
}

Json config_json(const ModelConfig& c, const HfExportOptions& options) {
  Json json;
  if (c.architecture == Architecture::kLlama) {
    json = {{"architectures", {"LlamaForCausalLM"}},
            {"model_type", "llama"},
            {"hidden_size", c.hidden},
            {"num_hidden_layers", c.n_layers},
            {"num_attention_heads", c.n_heads},
            {"num_key_value_heads", c.n_kv_heads},
            {"intermediate_size", c.ffn_hidden},
            {"rms_norm_eps", c.norm_eps},
            {"hidden_act", "silu"},
            {"attention_bias", c.qkv_bias}};
    // Without the key, transformers takes hidden_size // num_attention_heads.
    if (options.explicit_head_dim || c.head_dim != c.hidden / c.n_heads) {
      json["head_dim"] = c.head_dim;
    }
  } else {
    json = {{"architectures", {"FalconForCausalLM"}},
            {"model_type", "falcon"},
            {"hidden_size", c.hidden},
            {"num_hidden_layers", c.n_layers},
            {"num_attention_heads", c.n_heads},
            {"multi_query", true},
            {"parallel_attn", c.parallel_block},
            {"new_decoder_architecture", false},
            {"alibi", false},
            {"bias", c.qkv_bias},
            {"ffn_hidden_size", c.ffn_hidden},
            {"activation", "gelu"},
            {"layer_norm_epsilon", c.norm_eps}};
  }
  json["vocab_size"] = c.vocab_size;
  json["max_position_embeddings"] = c.max_positions;
  json["tie_word_embeddings"] = c.tied_embeddings;
  if (c.bos_token >= 0) json["bos_token_id"] = c.bos_token;
  if (c.eos_token >= 0) json["eos_token_id"] = c.eos_token;
  json.update(rope_json(c, options));
  return json;
}

// What a checkpoint needs that the export cannot write.
Status check_exportable(const ModelConfig& c) {
  auto refuse = [&](const std::string& what) {
    return make_error(ErrorCode::kUnsupported,
                      "cannot write " + c.architecture_name + " as a checkpoint: " + what);
  };
  if (c.rope_style != RopeStyle::kHalf) return refuse("interleaved rotary pairs (GGUF layout)");
  if (c.rotary_dim != 0 && c.rotary_dim != c.head_dim) return refuse("partial rotary");
  if (c.architecture == Architecture::kLlama) {
    if (c.norm != NormKind::kRms || c.activation != Activation::kSwiGlu || c.parallel_block ||
        c.mlp_bias || c.qkv_bias != c.out_bias) {
      return refuse("a Llama layer other than RMSNorm, SwiGLU, sequential, one attention bias");
    }
    return Status::ok();
  }
  if (c.norm != NormKind::kLayer || c.activation != Activation::kGelu) {
    return refuse("a Falcon layer other than LayerNorm and GELU");
  }
  if (c.n_kv_heads != 1) return refuse("Falcon with more than one K/V head");
  if (c.q_dim() != c.hidden) return refuse("Falcon with n_heads * head_dim != hidden");
  if (c.qkv_bias != c.out_bias || c.qkv_bias != c.mlp_bias) {
    return refuse("Falcon biases that are not all on or all off");
  }
  if (c.rope_scaling.type != RopeScaling::Type::kNone) return refuse("Falcon with rope scaling");
  return Status::ok();
}

// The tensors of the file: HF name, shape and the canonical tensors whose rows it concatenates.
struct FileTensor {
  std::string name;
  std::vector<std::string> parts;
  bool vector = false;  // 1-D in the file (norms, biases)
};

std::vector<FileTensor> file_tensors(const ModelConfig& c) {
  std::vector<FileTensor> t;
  const bool llama = c.architecture == Architecture::kLlama;
  auto add = [&](std::string name, std::vector<std::string> parts, bool vector = false) {
    t.push_back({std::move(name), std::move(parts), vector});
  };
  if (llama) {
    add("model.embed_tokens.weight", {"token_embedding"});
    add("model.norm.weight", {"final_norm"}, true);
  } else {
    add("transformer.word_embeddings.weight", {"token_embedding"});
    add("transformer.ln_f.weight", {"final_norm"}, true);
    add("transformer.ln_f.bias", {"final_norm_bias"}, true);
  }
  if (!c.tied_embeddings) add("lm_head.weight", {"lm_head"});
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    if (llama) {
      const std::string hf = "model.layers." + std::to_string(l) + ".";
      add(hf + "input_layernorm.weight", {p + "attn_norm"}, true);
      add(hf + "self_attn.q_proj.weight", {p + "wq"});
      add(hf + "self_attn.k_proj.weight", {p + "wk"});
      add(hf + "self_attn.v_proj.weight", {p + "wv"});
      add(hf + "self_attn.o_proj.weight", {p + "wo"});
      if (c.qkv_bias) {
        add(hf + "self_attn.q_proj.bias", {p + "bq"}, true);
        add(hf + "self_attn.k_proj.bias", {p + "bk"}, true);
        add(hf + "self_attn.v_proj.bias", {p + "bv"}, true);
        add(hf + "self_attn.o_proj.bias", {p + "bo"}, true);
      }
      add(hf + "post_attention_layernorm.weight", {p + "mlp_norm"}, true);
      add(hf + "mlp.gate_proj.weight", {p + "w_gate"});
      add(hf + "mlp.up_proj.weight", {p + "w_up"});
      add(hf + "mlp.down_proj.weight", {p + "w_down"});
      continue;
    }
    const std::string hf = "transformer.h." + std::to_string(l) + ".";
    add(hf + "input_layernorm.weight", {p + "attn_norm"}, true);
    add(hf + "input_layernorm.bias", {p + "attn_norm_bias"}, true);
    // Multi-query Falcon fuses the rows as [q heads | k | v].
    add(hf + "self_attention.query_key_value.weight", {p + "wq", p + "wk", p + "wv"});
    add(hf + "self_attention.dense.weight", {p + "wo"});
    if (!c.parallel_block) {
      add(hf + "post_attention_layernorm.weight", {p + "mlp_norm"}, true);
      add(hf + "post_attention_layernorm.bias", {p + "mlp_norm_bias"}, true);
    }
    add(hf + "mlp.dense_h_to_4h.weight", {p + "w_up"});
    add(hf + "mlp.dense_4h_to_h.weight", {p + "w_down"});
    if (c.qkv_bias) {
      add(hf + "self_attention.query_key_value.bias", {p + "bq", p + "bk", p + "bv"}, true);
      add(hf + "self_attention.dense.bias", {p + "bo"}, true);
      add(hf + "mlp.dense_h_to_4h.bias", {p + "b_up"}, true);
      add(hf + "mlp.dense_4h_to_h.bias", {p + "b_down"}, true);
    }
  }
  return t;
}

}  // namespace

Status write_hf_checkpoint(const HostModel& model, const std::string& dir,
                           const HfExportOptions& options) {
  const ModelConfig& c = model.config;
  RUNAHEAD_RETURN_IF_ERROR(check_exportable(c));
  std::vector<SafetensorsEntry> entries;
  std::vector<std::unique_ptr<std::vector<uint8_t>>> fused;  // concatenated parts
  for (const FileTensor& tensor : file_tensors(c)) {
    std::vector<const HostTensor*> parts;
    int64_t rows = 0;
    for (const std::string& name : tensor.parts) {
      const HostTensor* part = model.find(name);
      if (part == nullptr) {
        return make_error(ErrorCode::kNotFound, model.path + ": tensor " + name +
                                                    " is missing, needed for " + tensor.name);
      }
      if (!parts.empty() && part->dtype != parts[0]->dtype) {
        return make_error(ErrorCode::kInvalidArgument,
                          model.path + ": the parts of " + tensor.name + " differ in dtype");
      }
      rows += tensor.vector ? part->rows * part->cols : part->rows;
      parts.push_back(part);
    }
    const int64_t cols = tensor.vector ? 1 : parts[0]->cols;
    SafetensorsEntry entry{
        tensor.name, parts[0]->dtype,
        tensor.vector ? std::vector<int64_t>{rows} : std::vector<int64_t>{rows, cols},
        parts[0]->data};
    if (parts.size() > 1) {
      auto bytes = std::make_unique<std::vector<uint8_t>>();
      for (const HostTensor* part : parts) {
        const auto* begin = static_cast<const uint8_t*>(part->data);
        bytes->insert(bytes->end(), begin, begin + part->bytes());
      }
      entry.data = bytes->data();
      fused.push_back(std::move(bytes));
    }
    entries.push_back(std::move(entry));
  }
  RUNAHEAD_RETURN_IF_ERROR(write_safetensors(dir + "/model.safetensors", entries));
  const std::string config_path = dir + "/config.json";
  std::ofstream out(config_path, std::ios::binary | std::ios::trunc);
  out << config_json(c, options).dump(1);
  if (!out.good()) return make_error(ErrorCode::kUnavailable, config_path + ": cannot be written");
  return Status::ok();
}

}  // namespace runahead::testing
