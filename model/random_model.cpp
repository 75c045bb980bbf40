#include "model/random_model.h"

#include <cmath>
#include <memory>
#include <random>

namespace runahead {
namespace {

ModelConfig tiny_llama() {
  ModelConfig c;
  c.architecture = Architecture::kLlama;
  c.architecture_name = "tiny-llama";
  c.n_layers = 3;
  c.hidden = 36;
  c.n_heads = 6;
  c.n_kv_heads = 2;
  c.head_dim = 12;
  c.ffn_hidden = 52;
  c.vocab_size = 97;
  c.max_positions = 256;
  c.norm_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  return c;
}

ModelConfig tiny_falcon() {
  ModelConfig c = tiny_llama();
  c.architecture = Architecture::kFalcon;
  c.architecture_name = "tiny-falcon";
  c.n_kv_heads = 1;
  c.norm = NormKind::kLayer;
  c.activation = Activation::kGelu;
  c.parallel_block = true;
  c.tied_embeddings = true;
  return c;
}

// Small enough for CPU tests, large enough that a long prompt takes a while.
ModelConfig mini_llama() {
  ModelConfig c = tiny_llama();
  c.architecture_name = "mini-llama";
  c.n_layers = 4;
  c.hidden = 256;
  c.n_heads = 8;
  c.n_kv_heads = 4;
  c.head_dim = 32;
  c.ffn_hidden = 688;
  c.vocab_size = 512;
  c.max_positions = 4096;
  return c;
}

ModelConfig llama2_7b() {
  ModelConfig c;
  c.architecture_name = "llama2-7b";
  c.n_layers = 32;
  c.hidden = 4096;
  c.n_heads = 32;
  c.n_kv_heads = 32;
  c.head_dim = 128;
  c.ffn_hidden = 11008;
  c.vocab_size = 32000;
  c.max_positions = 32768;  // past the trained 4096: shapes only, for long-context benchmarks
  c.norm_eps = 1e-5f;
  c.bos_token = 1;
  c.eos_token = 2;
  return c;
}

ModelConfig llama3_8b() {
  ModelConfig c = llama2_7b();
  c.architecture_name = "llama3-8b";
  c.n_kv_heads = 8;
  c.ffn_hidden = 14336;
  c.vocab_size = 128256;
  c.max_positions = 131072;
  c.rope_theta = 500000.0f;
  c.rope_scaling = {RopeScaling::Type::kLlama3, 8.0f, 1.0f, 4.0f, 8192};
  c.bos_token = 128000;
  c.eos_token = 128001;
  return c;
}

ModelConfig falcon_7b() {
  ModelConfig c;
  c.architecture = Architecture::kFalcon;
  c.architecture_name = "falcon-7b";
  c.n_layers = 32;
  c.hidden = 4544;
  c.n_heads = 71;
  c.n_kv_heads = 1;
  c.head_dim = 64;
  c.ffn_hidden = 4 * 4544;
  c.vocab_size = 65024;
  c.max_positions = 32768;
  c.norm_eps = 1e-5f;
  c.norm = NormKind::kLayer;
  c.activation = Activation::kGelu;
  c.parallel_block = true;
  c.tied_embeddings = false;
  c.bos_token = 11;
  c.eos_token = 11;
  return c;
}

void add_random(HostModel& model, const std::string& name, int64_t rows, int64_t cols,
                std::mt19937_64& rng, float scale, float offset, DType dtype) {
  const auto count = static_cast<size_t>(rows * cols);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> values(count);
  for (float& x : values) x = offset + dist(rng);
  auto data = std::make_shared<std::vector<uint8_t>>(count * dtype_size(dtype));
  convert_from_f32(values.data(), dtype, data->data(), count);
  model.tensors[name] = HostTensor{dtype, rows, cols, data->data(), "random:" + name};
  model.keepalive.push_back(data);
}

}  // namespace

std::vector<std::string> model_presets() {
  return {"tiny-llama", "tiny-falcon", "mini-llama", "llama2-7b", "llama3-8b", "falcon-7b"};
}

Result<ModelConfig> preset_config(const std::string& name) {
  if (name == "tiny-llama") return tiny_llama();
  if (name == "tiny-falcon") return tiny_falcon();
  if (name == "mini-llama") return mini_llama();
  if (name == "llama2-7b") return llama2_7b();
  if (name == "llama3-8b") return llama3_8b();
  if (name == "falcon-7b") return falcon_7b();
  std::string known;
  for (const auto& preset : model_presets()) known += (known.empty() ? "" : ", ") + preset;
  return make_error(ErrorCode::kNotFound,
                    "unknown model preset '" + name + "' (known: " + known + ")");
}

HostModel random_host_model(const ModelConfig& c, uint64_t seed, float scale, DType dtype) {
  HostModel model;
  model.config = c;
  model.path = "random:" + c.architecture_name;
  std::mt19937_64 rng(seed);
  const bool layer_norm = c.norm == NormKind::kLayer;
  auto add = [&](const std::string& name, int64_t rows, int64_t cols, float s, float offset) {
    add_random(model, name, rows, cols, rng, s, offset, dtype);
  };
  add("token_embedding", c.vocab_size, c.hidden, 1.0f, 0.0f);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    add(p + "attn_norm", 1, c.hidden, 0.1f, 1.0f);
    if (layer_norm) add(p + "attn_norm_bias", 1, c.hidden, 0.1f, 0.0f);
    add(p + "wq", c.q_dim(), c.hidden, scale, 0.0f);
    add(p + "wk", c.kv_dim(), c.hidden, scale, 0.0f);
    add(p + "wv", c.kv_dim(), c.hidden, scale, 0.0f);
    if (c.qkv_bias) {
      add(p + "bq", 1, c.q_dim(), scale, 0.0f);
      add(p + "bk", 1, c.kv_dim(), scale, 0.0f);
      add(p + "bv", 1, c.kv_dim(), scale, 0.0f);
    }
    add(p + "wo", c.hidden, c.q_dim(), scale, 0.0f);
    if (c.out_bias) add(p + "bo", 1, c.hidden, scale, 0.0f);
    if (!c.parallel_block) {
      add(p + "mlp_norm", 1, c.hidden, 0.1f, 1.0f);
      if (layer_norm) add(p + "mlp_norm_bias", 1, c.hidden, 0.1f, 0.0f);
    }
    if (c.activation == Activation::kSwiGlu) add(p + "w_gate", c.ffn_hidden, c.hidden, scale, 0.0f);
    add(p + "w_up", c.ffn_hidden, c.hidden, scale, 0.0f);
    add(p + "w_down", c.hidden, c.ffn_hidden, scale, 0.0f);
    if (c.mlp_bias) {
      add(p + "b_up", 1, c.ffn_hidden, scale, 0.0f);
      add(p + "b_down", 1, c.hidden, scale, 0.0f);
    }
  }
  add("final_norm", 1, c.hidden, 0.1f, 1.0f);
  if (layer_norm) add("final_norm_bias", 1, c.hidden, 0.1f, 0.0f);
  if (!c.tied_embeddings) add("lm_head", c.vocab_size, c.hidden, scale, 0.0f);
  return model;
}

bool is_random_model_path(const std::string& path) {
  return path.rfind("random:", 0) == 0;
}

Result<HostModel> load_random_model(const std::string& path, uint64_t seed) {
  RUNAHEAD_ASSIGN_OR_RETURN(ModelConfig config, preset_config(path.substr(7)));
  // Weight scale ~ 1/sqrt(hidden) keeps activations of deep random models in range.
  const float scale = 1.0f / std::sqrt(static_cast<float>(config.hidden));
  const bool large = config.parameter_count() > (int64_t{1} << 30);
  return random_host_model(config, seed, scale, large ? DType::kBF16 : DType::kF32);
}

}  // namespace runahead
