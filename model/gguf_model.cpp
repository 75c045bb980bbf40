// Llama-architecture GGUF files onto the canonical model definition.
//
// GGUF keeps Q and K rows permuted so that rotary pairs are adjacent (llama.cpp's layout);
// rather than undoing that, the config asks the backend for interleaved rotary pairs.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "model/gguf.h"
#include "model/gguf_model.h"

namespace runahead {
namespace {

Error config_error(const std::string& path, const std::string& key, const std::string& why) {
  return make_error(ErrorCode::kCorruptData, path + ": metadata key " + key + " " + why);
}

Result<int> positive_int(const GgufFile& file, const std::string& key) {
  RUNAHEAD_ASSIGN_OR_RETURN(int64_t value, file.get_int(key));
  if (value <= 0 || value > (int64_t{1} << 30)) {
    return config_error(file.path(), key, "is " + std::to_string(value) + ", out of range");
  }
  return static_cast<int>(value);
}

// llama.cpp stores Llama-3.1 rope scaling as per-frequency divisors (rope_freqs.weight);
// they are matched against the llama3 formula so the backend's own inv_freq can be used.
Status apply_rope_freqs(const GgufFile& file, const GgufTensorInfo& tensor, ModelConfig& c) {
  const int half = c.rotary_dims() / 2;
  if (tensor.elements != half) {
    return make_error(ErrorCode::kCorruptData, file.path() + ": tensor rope_freqs.weight has " +
                                                   std::to_string(tensor.elements) +
                                                   " elements, expected " + std::to_string(half) +
                                                   " (rope.dimension_count / 2)");
  }
  RUNAHEAD_ASSIGN_OR_RETURN(std::vector<float> divisors, dequantize_tensor(file, tensor));
  float factor = 1.0f;
  for (float d : divisors) factor = std::max(factor, d);
  const std::string arch = "llama";
  RUNAHEAD_ASSIGN_OR_RETURN(int64_t original,
                            file.get_int_or(arch + ".rope.scaling.original_context_length", 8192));
  c.rope_scaling = {RopeScaling::Type::kLlama3, factor, 1.0f, 4.0f, static_cast<int>(original)};
  const std::vector<float> ours = c.rope_inv_freq();
  for (int i = 0; i < half; ++i) {
    const double base = std::pow(static_cast<double>(c.rope_theta), -2.0 * i / c.rotary_dims());
    const double want = base / divisors[static_cast<size_t>(i)];
    if (std::abs(ours[static_cast<size_t>(i)] - want) > 1e-3 * want) {
      return make_error(ErrorCode::kUnsupported,
                        file.path() +
                            ": tensor rope_freqs.weight does not follow the llama3 "
                            "rope scaling formula (low 1, high 4); other schemes are "
                            "not supported");
    }
  }
  return Status::ok();
}

Result<ModelConfig> read_config(const GgufFile& file) {
  const std::string& path = file.path();
  RUNAHEAD_ASSIGN_OR_RETURN(std::string arch, file.get_string("general.architecture"));
  if (arch != "llama") {
    return make_error(ErrorCode::kUnsupported,
                      path + ": metadata key general.architecture is '" + arch +
                          "'; only llama-architecture GGUF files are supported");
  }
  ModelConfig c;
  c.architecture = Architecture::kLlama;
  const GgufValue* name = file.find("general.name");
  c.architecture_name = name && name->as_string() ? "llama (" + *name->as_string() + ")" : arch;
  const std::string p = arch + ".";
  RUNAHEAD_ASSIGN_OR_RETURN(c.n_layers, positive_int(file, p + "block_count"));
  RUNAHEAD_ASSIGN_OR_RETURN(c.hidden, positive_int(file, p + "embedding_length"));
  RUNAHEAD_ASSIGN_OR_RETURN(c.ffn_hidden, positive_int(file, p + "feed_forward_length"));
  RUNAHEAD_ASSIGN_OR_RETURN(c.n_heads, positive_int(file, p + "attention.head_count"));
  c.n_kv_heads = c.n_heads;
  if (file.find(p + "attention.head_count_kv")) {
    RUNAHEAD_ASSIGN_OR_RETURN(c.n_kv_heads, positive_int(file, p + "attention.head_count_kv"));
  }
  RUNAHEAD_ASSIGN_OR_RETURN(c.max_positions, positive_int(file, p + "context_length"));
  if (c.hidden % c.n_heads != 0 && !file.find(p + "rope.dimension_count")) {
    return config_error(path, p + "attention.head_count",
                        "does not divide " + p + "embedding_length");
  }
  c.head_dim = c.hidden / c.n_heads;
  if (file.find(p + "attention.key_length")) {
    RUNAHEAD_ASSIGN_OR_RETURN(c.head_dim, positive_int(file, p + "attention.key_length"));
  }
  if (file.find(p + "rope.dimension_count")) {
    RUNAHEAD_ASSIGN_OR_RETURN(int rotary, positive_int(file, p + "rope.dimension_count"));
    if (!file.find(p + "attention.key_length")) c.head_dim = rotary;
    if (rotary > c.head_dim || rotary % 2 != 0) {
      return config_error(path, p + "rope.dimension_count",
                          "is " + std::to_string(rotary) +
                              ", not an even number up to the head "
                              "dimension " +
                              std::to_string(c.head_dim));
    }
    c.rotary_dim = rotary == c.head_dim ? 0 : rotary;
  }
  RUNAHEAD_ASSIGN_OR_RETURN(double theta, file.get_float_or(p + "rope.freq_base", 10000.0));
  c.rope_theta = static_cast<float>(theta);
  RUNAHEAD_ASSIGN_OR_RETURN(double eps,
                            file.get_float_or(p + "attention.layer_norm_rms_epsilon", 1e-5));
  c.norm_eps = static_cast<float>(eps);
  c.norm = NormKind::kRms;
  c.activation = Activation::kSwiGlu;
  c.rope_style = RopeStyle::kInterleaved;

  if (const GgufValue* type = file.find(p + "rope.scaling.type")) {
    const std::string* kind = type->as_string();
    if (kind == nullptr) return config_error(path, p + "rope.scaling.type", "is not a string");
    if (*kind == "linear") {
      RUNAHEAD_ASSIGN_OR_RETURN(double factor, file.get_float(p + "rope.scaling.factor"));
      c.rope_scaling.type = RopeScaling::Type::kLinear;
      c.rope_scaling.factor = static_cast<float>(factor);
    } else if (*kind != "none") {
      return make_error(ErrorCode::kUnsupported, path + ": metadata key " + p +
                                                     "rope.scaling.type is '" + *kind +
                                                     "'; supported: none, linear, llama3 "
                                                     "(rope_freqs.weight)");
    }
  }
  if (const GgufTensorInfo* freqs = file.find_tensor("rope_freqs.weight")) {
    RUNAHEAD_RETURN_IF_ERROR(apply_rope_freqs(file, *freqs, c));
  }

  RUNAHEAD_ASSIGN_OR_RETURN(int64_t bos, file.get_int_or("tokenizer.ggml.bos_token_id", -1));
  RUNAHEAD_ASSIGN_OR_RETURN(int64_t eos, file.get_int_or("tokenizer.ggml.eos_token_id", -1));
  c.bos_token = static_cast<int32_t>(bos);
  c.eos_token = static_cast<int32_t>(eos);

  const GgufTensorInfo* embedding = file.find_tensor("token_embd.weight");
  if (embedding == nullptr) {
    return make_error(ErrorCode::kNotFound, path + ": tensor token_embd.weight is missing");
  }
  if (embedding->dims.size() != 2) {
    return make_error(ErrorCode::kCorruptData,
                      path + ": tensor token_embd.weight is not two-dimensional");
  }
  c.vocab_size = static_cast<int>(embedding->dims[1]);
  if (file.find(p + "vocab_size")) {
    RUNAHEAD_ASSIGN_OR_RETURN(int vocab, positive_int(file, p + "vocab_size"));
    if (vocab != c.vocab_size) {
      return config_error(path, p + "vocab_size",
                          "is " + std::to_string(vocab) + " but tensor token_embd.weight has " +
                              std::to_string(c.vocab_size) + " rows");
    }
  }
  c.tied_embeddings = file.find_tensor("output.weight") == nullptr;
  if (c.bos_token >= c.vocab_size || c.eos_token >= c.vocab_size) {
    return make_error(ErrorCode::kCorruptData,
                      path + ": tokenizer.ggml.bos_token_id/eos_token_id lie outside the " +
                          std::to_string(c.vocab_size) + "-token vocabulary");
  }
  Status valid = c.validate();
  if (!valid) return make_error(valid.code(), path + ": " + valid.message());
  return c;
}

std::string shape_text(const std::vector<int64_t>& dims) {
  std::string text = "[";
  for (size_t i = 0; i < dims.size(); ++i) text += (i ? ", " : "") + std::to_string(dims[i]);
  return text + "]";
}

// Dequantizes `gguf_name` into the host model as `canonical`, after checking its GGUF shape
// (fastest dimension first: {cols} for vectors, {cols, rows} for matrices).
Status add_tensor(const GgufFile& file, HostModel& model, const std::string& gguf_name,
                  const std::string& canonical, int64_t rows, int64_t cols) {
  const GgufTensorInfo* tensor = file.find_tensor(gguf_name);
  if (tensor == nullptr) {
    return make_error(ErrorCode::kNotFound, file.path() + ": tensor " + gguf_name + " is missing");
  }
  const std::vector<int64_t> expected =
      rows == 1 ? std::vector<int64_t>{cols} : std::vector<int64_t>{cols, rows};
  if (tensor->dims != expected) {
    return make_error(ErrorCode::kCorruptData, file.path() + ": tensor " + gguf_name +
                                                   " has shape " + shape_text(tensor->dims) +
                                                   ", but the metadata implies " +
                                                   shape_text(expected));
  }
  RUNAHEAD_ASSIGN_OR_RETURN(std::vector<float> values, dequantize_tensor(file, *tensor));
  auto storage = std::make_shared<std::vector<float>>(std::move(values));
  model.tensors[canonical] =
      HostTensor{DType::kF32, rows, cols, storage->data(), file.path() + ": " + gguf_name};
  model.keepalive.push_back(std::move(storage));
  return Status::ok();
}

}  // namespace

Result<HostModel> load_gguf_model(const std::string& path) {
  RUNAHEAD_ASSIGN_OR_RETURN(std::shared_ptr<const GgufFile> file, GgufFile::open(path));
  RUNAHEAD_ASSIGN_OR_RETURN(ModelConfig c, read_config(*file));
  HostModel model;
  model.config = c;
  model.path = path;
  model.keepalive.push_back(file);
  RUNAHEAD_RETURN_IF_ERROR(
      add_tensor(*file, model, "token_embd.weight", "token_embedding", c.vocab_size, c.hidden));
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string g = "blk." + std::to_string(l) + ".";
    const std::string n = "layers." + std::to_string(l) + ".";
    RUNAHEAD_RETURN_IF_ERROR(
        add_tensor(*file, model, g + "attn_norm.weight", n + "attn_norm", 1, c.hidden));
    RUNAHEAD_RETURN_IF_ERROR(
        add_tensor(*file, model, g + "attn_q.weight", n + "wq", c.q_dim(), c.hidden));
    RUNAHEAD_RETURN_IF_ERROR(
        add_tensor(*file, model, g + "attn_k.weight", n + "wk", c.kv_dim(), c.hidden));
    RUNAHEAD_RETURN_IF_ERROR(
        add_tensor(*file, model, g + "attn_v.weight", n + "wv", c.kv_dim(), c.hidden));
    RUNAHEAD_RETURN_IF_ERROR(
        add_tensor(*file, model, g + "attn_output.weight", n + "wo", c.hidden, c.q_dim()));
    RUNAHEAD_RETURN_IF_ERROR(
        add_tensor(*file, model, g + "ffn_norm.weight", n + "mlp_norm", 1, c.hidden));
    RUNAHEAD_RETURN_IF_ERROR(
        add_tensor(*file, model, g + "ffn_gate.weight", n + "w_gate", c.ffn_hidden, c.hidden));
    RUNAHEAD_RETURN_IF_ERROR(
        add_tensor(*file, model, g + "ffn_up.weight", n + "w_up", c.ffn_hidden, c.hidden));
    RUNAHEAD_RETURN_IF_ERROR(
        add_tensor(*file, model, g + "ffn_down.weight", n + "w_down", c.hidden, c.ffn_hidden));
  }
  RUNAHEAD_RETURN_IF_ERROR(
      add_tensor(*file, model, "output_norm.weight", "final_norm", 1, c.hidden));
  if (!c.tied_embeddings) {
    RUNAHEAD_RETURN_IF_ERROR(
        add_tensor(*file, model, "output.weight", "lm_head", c.vocab_size, c.hidden));
  }
  return model;
}

}  // namespace runahead
