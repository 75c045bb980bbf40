#include "model/random_model.h"

#include <cmath>
#include <cstdio>
#include <memory>
#include <string_view>
#include <utility>

#include "kernels/random_uniform.h"
#include "model/model_hash.h"

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

// A context of 128k positions with almost no work per position: long prompts through the
// command line and the cluster on CPUs.
ModelConfig long_tiny_llama() {
  ModelConfig c = tiny_llama();
  c.architecture_name = "long-tiny-llama";
  c.n_layers = 1;
  c.hidden = 16;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.head_dim = 8;
  c.ffn_hidden = 24;
  c.max_positions = 131072;
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

// A tensor's values by its canonical name: the embedding in [-1, 1], norm weights in
// [0.9, 1.1], norm biases in [-0.1, 0.1], everything else in [-scale, scale].
struct Uniform {
  float scale;
  float offset;
};
Uniform uniform_of(const std::string& name, float scale) {
  auto ends_with = [&](std::string_view suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (name == "token_embedding") return {1.0f, 0.0f};
  if (ends_with("_norm_bias")) return {0.1f, 0.0f};
  if (ends_with("_norm")) return {0.1f, 1.0f};
  return {scale, 0.0f};
}

// Each tensor's stream is named by the tensor, so its values do not depend on which other
// tensors the config has or in which order they are made.
uint64_t stream_seed(uint64_t seed, const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (char c : name) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ull;
  }
  return splitmix64(seed ^ splitmix64(h));
}

struct TensorShape {
  std::string name;
  int64_t rows;
  int64_t cols;
};

// Every canonical tensor (model/host_model.h) the config needs, unfused.
std::vector<TensorShape> canonical_tensors(const ModelConfig& c) {
  const bool layer_norm = c.norm == NormKind::kLayer;
  std::vector<TensorShape> t;
  t.push_back({"token_embedding", c.vocab_size, c.hidden});
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    t.push_back({p + "attn_norm", 1, c.hidden});
    if (layer_norm) t.push_back({p + "attn_norm_bias", 1, c.hidden});
    t.push_back({p + "wq", c.q_dim(), c.hidden});
    t.push_back({p + "wk", c.kv_dim(), c.hidden});
    t.push_back({p + "wv", c.kv_dim(), c.hidden});
    if (c.qkv_bias) {
      t.push_back({p + "bq", 1, c.q_dim()});
      t.push_back({p + "bk", 1, c.kv_dim()});
      t.push_back({p + "bv", 1, c.kv_dim()});
    }
    t.push_back({p + "wo", c.hidden, c.q_dim()});
    if (c.out_bias) t.push_back({p + "bo", 1, c.hidden});
    if (!c.parallel_block) {
      t.push_back({p + "mlp_norm", 1, c.hidden});
      if (layer_norm) t.push_back({p + "mlp_norm_bias", 1, c.hidden});
    }
    if (c.activation == Activation::kSwiGlu) t.push_back({p + "w_gate", c.ffn_hidden, c.hidden});
    t.push_back({p + "w_up", c.ffn_hidden, c.hidden});
    t.push_back({p + "w_down", c.hidden, c.ffn_hidden});
    if (c.mlp_bias) {
      t.push_back({p + "b_up", 1, c.ffn_hidden});
      t.push_back({p + "b_down", 1, c.hidden});
    }
  }
  t.push_back({"final_norm", 1, c.hidden});
  if (layer_norm) t.push_back({"final_norm_bias", 1, c.hidden});
  if (!c.tied_embeddings) t.push_back({"lm_head", c.vocab_size, c.hidden});
  return t;
}

// Builds the fused layout of upload_weights() in a backend's memory; every canonical part is
// filled from its own stream, so the values match random_host_model() element for element.
class InPlaceGenerator {
 public:
  InPlaceGenerator(Backend& backend, ModelWeights& out, uint64_t seed, float scale)
      : backend_(backend), out_(out), seed_(seed), scale_(scale) {}

  // One matrix of `cols` columns whose rows are the parts, in order.
  Result<Tensor> rows(const std::vector<std::pair<std::string, int64_t>>& parts, int64_t cols) {
    int64_t total = 0;
    for (const auto& part : parts) total += part.second;
    RUNAHEAD_ASSIGN_OR_RETURN(Tensor whole, allocate(parts, total, cols));
    int64_t row = 0;
    for (const auto& [name, part_rows] : parts) {
      RUNAHEAD_RETURN_IF_ERROR(fill(name, whole.rows_slice(row, row + part_rows)));
      row += part_rows;
    }
    return whole;
  }
  Result<Tensor> matrix(const std::string& name, int64_t rows_count, int64_t cols) {
    return rows({{name, rows_count}}, cols);
  }
  // One row whose columns are the parts (vectors: norms and biases), in order.
  Result<Tensor> row(const std::vector<std::pair<std::string, int64_t>>& parts) {
    int64_t total = 0;
    for (const auto& part : parts) total += part.second;
    RUNAHEAD_ASSIGN_OR_RETURN(Tensor whole, allocate(parts, 1, total));
    int64_t col = 0;
    for (const auto& [name, part_cols] : parts) {
      RUNAHEAD_RETURN_IF_ERROR(fill(name, whole.cols_slice(col, col + part_cols)));
      col += part_cols;
    }
    return whole;
  }
  Result<Tensor> vector(const std::string& name, int64_t cols) { return row({{name, cols}}); }

 private:
  Result<Tensor> allocate(const std::vector<std::pair<std::string, int64_t>>& parts,
                          int64_t rows_count, int64_t cols) {
    const DType dtype = backend_.compute_dtype();
    auto buffer = backend_.allocate(static_cast<size_t>(rows_count * cols) * dtype_size(dtype));
    if (!buffer) {
      return make_error(buffer.error().code,
                        "random weight " + parts.front().first + " [" + std::to_string(rows_count) +
                            ", " + std::to_string(cols) + "]: " + buffer.error().message);
    }
    const Tensor whole = buffer->view(dtype, rows_count, cols);
    out_.storage.push_back(std::move(buffer).value());
    return whole;
  }

  Status fill(const std::string& name, Tensor view) {
    const Uniform u = uniform_of(name, scale_);
    return backend_.fill_uniform(view, stream_seed(seed_, name), u.scale, u.offset);
  }

  Backend& backend_;
  ModelWeights& out_;
  uint64_t seed_;
  float scale_;
};

}  // namespace

std::vector<std::string> model_presets() {
  return {"tiny-llama", "tiny-falcon", "mini-llama", "long-tiny-llama",
          "llama2-7b",  "llama3-8b",   "falcon-7b"};
}

Result<ModelConfig> preset_config(const std::string& name) {
  if (name == "tiny-llama") return tiny_llama();
  if (name == "tiny-falcon") return tiny_falcon();
  if (name == "mini-llama") return mini_llama();
  if (name == "long-tiny-llama") return long_tiny_llama();
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
  std::vector<float> values;
  for (const TensorShape& t : canonical_tensors(c)) {
    const auto count = static_cast<size_t>(t.rows * t.cols);
    const Uniform u = uniform_of(t.name, scale);
    const uint64_t stream = stream_seed(seed, t.name);
    values.resize(count);
    for (size_t i = 0; i < count; ++i) values[i] = uniform_value(stream, i, u.scale, u.offset);
    auto data = std::make_shared<std::vector<uint8_t>>(count * dtype_size(dtype));
    convert_from_f32(values.data(), dtype, data->data(), count);
    model.tensors[t.name] = HostTensor{dtype, t.rows, t.cols, data->data(), "random:" + t.name};
    model.keepalive.push_back(data);
  }
  return model;
}

Result<ModelWeights> generate_random_weights(const ModelConfig& c, Backend& backend, uint64_t seed,
                                             float scale) {
  RUNAHEAD_RETURN_IF_ERROR(c.validate());
  RUNAHEAD_RETURN_IF_ERROR(backend.check_attention_shape(c.n_heads, c.n_kv_heads, c.head_dim));
  ModelWeights w;
  w.config = c;
  InPlaceGenerator gen(backend, w, seed, scale);
  const bool layer_norm = c.norm == NormKind::kLayer;

  RUNAHEAD_ASSIGN_OR_RETURN(w.token_embedding,
                            gen.matrix("token_embedding", c.vocab_size, c.hidden));
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    LayerWeights layer;
    RUNAHEAD_ASSIGN_OR_RETURN(layer.attn_norm, gen.vector(p + "attn_norm", c.hidden));
    if (layer_norm) {
      RUNAHEAD_ASSIGN_OR_RETURN(layer.attn_norm_bias, gen.vector(p + "attn_norm_bias", c.hidden));
    }
    RUNAHEAD_ASSIGN_OR_RETURN(
        layer.wqkv,
        gen.rows({{p + "wq", c.q_dim()}, {p + "wk", c.kv_dim()}, {p + "wv", c.kv_dim()}},
                 c.hidden));
    if (c.qkv_bias) {
      RUNAHEAD_ASSIGN_OR_RETURN(
          layer.bqkv,
          gen.row({{p + "bq", c.q_dim()}, {p + "bk", c.kv_dim()}, {p + "bv", c.kv_dim()}}));
    }
    RUNAHEAD_ASSIGN_OR_RETURN(layer.wo, gen.matrix(p + "wo", c.hidden, c.q_dim()));
    if (c.out_bias) {
      RUNAHEAD_ASSIGN_OR_RETURN(layer.bo, gen.vector(p + "bo", c.hidden));
    }
    if (!c.parallel_block) {
      RUNAHEAD_ASSIGN_OR_RETURN(layer.mlp_norm, gen.vector(p + "mlp_norm", c.hidden));
      if (layer_norm) {
        RUNAHEAD_ASSIGN_OR_RETURN(layer.mlp_norm_bias, gen.vector(p + "mlp_norm_bias", c.hidden));
      }
    }
    if (c.activation == Activation::kSwiGlu) {
      RUNAHEAD_ASSIGN_OR_RETURN(
          layer.w_gate_up,
          gen.rows({{p + "w_gate", c.ffn_hidden}, {p + "w_up", c.ffn_hidden}}, c.hidden));
    } else {
      RUNAHEAD_ASSIGN_OR_RETURN(layer.w_gate_up, gen.matrix(p + "w_up", c.ffn_hidden, c.hidden));
    }
    RUNAHEAD_ASSIGN_OR_RETURN(layer.w_down, gen.matrix(p + "w_down", c.hidden, c.ffn_hidden));
    if (c.mlp_bias) {
      RUNAHEAD_ASSIGN_OR_RETURN(layer.b_up, gen.vector(p + "b_up", c.ffn_hidden));
      RUNAHEAD_ASSIGN_OR_RETURN(layer.b_down, gen.vector(p + "b_down", c.hidden));
    }
    w.layers.push_back(layer);
  }
  RUNAHEAD_ASSIGN_OR_RETURN(w.final_norm, gen.vector("final_norm", c.hidden));
  if (layer_norm) {
    RUNAHEAD_ASSIGN_OR_RETURN(w.final_norm_bias, gen.vector("final_norm_bias", c.hidden));
  }
  if (c.tied_embeddings) {
    w.lm_head = w.token_embedding;
  } else {
    RUNAHEAD_ASSIGN_OR_RETURN(w.lm_head, gen.matrix("lm_head", c.vocab_size, c.hidden));
  }

  const std::vector<float> inv_freq = c.rope_inv_freq();
  auto inv_freq_buffer = backend.allocate(inv_freq.size() * sizeof(float));
  if (!inv_freq_buffer) return inv_freq_buffer.error();
  w.inv_freq = inv_freq_buffer->view(DType::kF32, 1, static_cast<int64_t>(inv_freq.size()));
  RUNAHEAD_RETURN_IF_ERROR(backend.copy_from_host(inv_freq.data(), w.inv_freq));
  w.storage.push_back(std::move(inv_freq_buffer).value());
  RUNAHEAD_RETURN_IF_ERROR(backend.synchronize());
  return w;
}

bool is_random_model_path(const std::string& path) {
  return path.rfind("random:", 0) == 0;
}

float random_weight_scale(const ModelConfig& config) {
  return 1.0f / std::sqrt(static_cast<float>(config.hidden));
}

Result<HostModel> load_random_model(const std::string& path, uint64_t seed) {
  RUNAHEAD_ASSIGN_OR_RETURN(ModelConfig config, preset_config(path.substr(7)));
  const bool large = config.parameter_count() > (int64_t{1} << 30);
  return random_host_model(config, seed, random_weight_scale(config),
                           large ? DType::kBF16 : DType::kF32);
}

std::string random_model_hash(const ModelConfig& config, uint64_t seed) {
  char scale[32];
  std::snprintf(scale, sizeof scale, "%a", static_cast<double>(random_weight_scale(config)));
  return generated_model_hash(
      config, "random:" + config.architecture_name + " seed " + std::to_string(seed) +
                  " uniform v" + std::to_string(kUniformGeneratorVersion) + " scale " + scale);
}

Result<RandomWeights> load_random_weights(const std::string& path, Backend& backend, uint64_t seed,
                                          const UploadProgress& progress) {
  if (!is_random_model_path(path)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "'" + path + "' is not a random model (expected random:NAME)");
  }
  RUNAHEAD_ASSIGN_OR_RETURN(ModelConfig config, preset_config(path.substr(7)));
  RandomWeights out;
  out.hash = random_model_hash(config, seed);
  auto in_place = generate_random_weights(config, backend, seed, random_weight_scale(config));
  if (in_place) {
    out.weights = std::move(in_place).value();
    out.in_place = true;
    return out;
  }
  if (in_place.error().code != ErrorCode::kUnsupported) return in_place.error();
  RUNAHEAD_ASSIGN_OR_RETURN(HostModel host, load_random_model(path, seed));
  RUNAHEAD_ASSIGN_OR_RETURN(out.weights, upload_weights(host, backend, progress));
  return out;
}

}  // namespace runahead
