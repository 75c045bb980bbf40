#include "model/weights.h"

#include <cstring>
#include <string>
#include <vector>

namespace runahead {
namespace {

std::string shape_string(int64_t rows, int64_t cols) {
  return "[" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
}

// Copies host tensors into the backend, converting to the backend's type.
class Uploader {
 public:
  Uploader(const HostModel& host, Backend& backend, ModelWeights& out,
           const UploadProgress& progress)
      : host_(host), backend_(backend), out_(out), progress_(progress) {
    for (const auto& [name, tensor] : host.tensors) total_bytes_ += tensor.bytes();
  }

  // Finds a tensor and checks its shape.
  Result<const HostTensor*> require(const std::string& name, int64_t rows, int64_t cols) const {
    const HostTensor* tensor = host_.find(name);
    if (tensor == nullptr) {
      return make_error(ErrorCode::kNotFound, host_.path + ": tensor " + name + " is missing");
    }
    // Vectors match whether stored as a row or a column.
    const bool vector_match = (rows == 1 || cols == 1) &&
                              (tensor->rows == 1 || tensor->cols == 1) &&
                              tensor->rows * tensor->cols == rows * cols;
    if (!(tensor->rows == rows && tensor->cols == cols) && !vector_match) {
      return make_error(ErrorCode::kCorruptData, host_.path + ": tensor " + name + " (" +
                                                     tensor->origin + ") has shape " +
                                                     shape_string(tensor->rows, tensor->cols) +
                                                     ", expected " + shape_string(rows, cols));
    }
    return tensor;
  }

  // Concatenates the parts along the rows into one backend tensor.
  Result<Tensor> upload(const std::vector<const HostTensor*>& parts, int64_t cols, DType dtype) {
    int64_t rows = 0;
    for (const HostTensor* part : parts) rows += part->rows * part->cols / cols;
    auto buffer = backend_.allocate(static_cast<size_t>(rows * cols) * dtype_size(dtype));
    if (!buffer) {
      return make_error(ErrorCode::kResourceExhausted,
                        "weights do not fit on " + backend_.name() + ": " + buffer.error().message);
    }
    Tensor whole = buffer->view(dtype, rows, cols);
    int64_t row = 0;
    std::vector<char> staging;
    for (const HostTensor* part : parts) {
      const int64_t part_rows = part->rows * part->cols / cols;
      const size_t count = static_cast<size_t>(part_rows * cols);
      const void* source = part->data;
      if (part->dtype != dtype) {
        std::vector<float> widened(count);
        convert_to_f32(part->dtype, part->data, widened.data(), count);
        staging.resize(count * dtype_size(dtype));
        convert_from_f32(widened.data(), dtype, staging.data(), count);
        source = staging.data();
      }
      RUNAHEAD_RETURN_IF_ERROR(
          backend_.copy_from_host(source, whole.rows_slice(row, row + part_rows)));
      row += part_rows;
      done_bytes_ += part->bytes();
      if (progress_) progress_(done_bytes_, total_bytes_);
    }
    out_.storage.push_back(std::move(buffer).value());
    return whole;
  }

  Result<Tensor> single(const std::string& name, int64_t rows, int64_t cols, DType dtype) {
    RUNAHEAD_ASSIGN_OR_RETURN(const HostTensor* tensor, require(name, rows, cols));
    return upload({tensor}, cols, dtype);
  }

  // Either `fused` of shape [sum of rows, cols], or the parts, fused here.
  Result<Tensor> fused(const std::string& fused_name, const std::vector<std::string>& part_names,
                       const std::vector<int64_t>& part_rows, int64_t cols, DType dtype) {
    int64_t total = 0;
    for (int64_t r : part_rows) total += r;
    if (host_.find(fused_name) != nullptr) return single(fused_name, total, cols, dtype);
    std::vector<const HostTensor*> parts;
    for (size_t i = 0; i < part_names.size(); ++i) {
      RUNAHEAD_ASSIGN_OR_RETURN(const HostTensor* part, require(part_names[i], part_rows[i], cols));
      parts.push_back(part);
    }
    return upload(parts, cols, dtype);
  }

 private:
  const HostModel& host_;
  Backend& backend_;
  ModelWeights& out_;
  const UploadProgress& progress_;
  size_t done_bytes_ = 0;
  size_t total_bytes_ = 0;
};

}  // namespace

Result<ModelWeights> upload_weights(const HostModel& host, Backend& backend,
                                    const UploadProgress& progress) {
  const ModelConfig& c = host.config;
  RUNAHEAD_RETURN_IF_ERROR(c.validate());
  RUNAHEAD_RETURN_IF_ERROR(backend.check_attention_shape(c.n_heads, c.n_kv_heads, c.head_dim));
  ModelWeights weights;
  weights.config = c;
  Uploader up(host, backend, weights, progress);
  const DType dt = backend.compute_dtype();
  const bool layer_norm = c.norm == NormKind::kLayer;
  const bool swiglu = c.activation == Activation::kSwiGlu;

  RUNAHEAD_ASSIGN_OR_RETURN(weights.token_embedding,
                            up.single("token_embedding", c.vocab_size, c.hidden, dt));
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    LayerWeights layer;
    RUNAHEAD_ASSIGN_OR_RETURN(layer.attn_norm, up.single(p + "attn_norm", 1, c.hidden, dt));
    if (layer_norm) {
      RUNAHEAD_ASSIGN_OR_RETURN(layer.attn_norm_bias,
                                up.single(p + "attn_norm_bias", 1, c.hidden, dt));
    }
    RUNAHEAD_ASSIGN_OR_RETURN(layer.wqkv,
                              up.fused(p + "wqkv", {p + "wq", p + "wk", p + "wv"},
                                       {c.q_dim(), c.kv_dim(), c.kv_dim()}, c.hidden, dt));
    if (c.qkv_bias) {
      // Biases are vectors: fused as one column, then viewed as one row.
      RUNAHEAD_ASSIGN_OR_RETURN(Tensor bias_column,
                                up.fused(p + "bqkv", {p + "bq", p + "bk", p + "bv"},
                                         {c.q_dim(), c.kv_dim(), c.kv_dim()}, 1, dt));
      layer.bqkv = Tensor::matrix(bias_column.data, dt, 1, c.qkv_dim());
    }
    RUNAHEAD_ASSIGN_OR_RETURN(layer.wo, up.single(p + "wo", c.hidden, c.q_dim(), dt));
    if (c.out_bias) {
      RUNAHEAD_ASSIGN_OR_RETURN(layer.bo, up.single(p + "bo", 1, c.hidden, dt));
    }
    if (!c.parallel_block) {
      RUNAHEAD_ASSIGN_OR_RETURN(layer.mlp_norm, up.single(p + "mlp_norm", 1, c.hidden, dt));
      if (layer_norm) {
        RUNAHEAD_ASSIGN_OR_RETURN(layer.mlp_norm_bias,
                                  up.single(p + "mlp_norm_bias", 1, c.hidden, dt));
      }
    }
    if (swiglu) {
      RUNAHEAD_ASSIGN_OR_RETURN(layer.w_gate_up,
                                up.fused(p + "w_gate_up", {p + "w_gate", p + "w_up"},
                                         {c.ffn_hidden, c.ffn_hidden}, c.hidden, dt));
    } else {
      RUNAHEAD_ASSIGN_OR_RETURN(layer.w_gate_up, up.single(p + "w_up", c.ffn_hidden, c.hidden, dt));
    }
    RUNAHEAD_ASSIGN_OR_RETURN(layer.w_down, up.single(p + "w_down", c.hidden, c.ffn_hidden, dt));
    if (c.mlp_bias) {
      RUNAHEAD_ASSIGN_OR_RETURN(layer.b_up, up.single(p + "b_up", 1, c.ffn_hidden, dt));
      RUNAHEAD_ASSIGN_OR_RETURN(layer.b_down, up.single(p + "b_down", 1, c.hidden, dt));
    }
    weights.layers.push_back(layer);
  }
  RUNAHEAD_ASSIGN_OR_RETURN(weights.final_norm, up.single("final_norm", 1, c.hidden, dt));
  if (layer_norm) {
    RUNAHEAD_ASSIGN_OR_RETURN(weights.final_norm_bias,
                              up.single("final_norm_bias", 1, c.hidden, dt));
  }
  if (c.tied_embeddings) {
    weights.lm_head = weights.token_embedding;
  } else {
    RUNAHEAD_ASSIGN_OR_RETURN(weights.lm_head, up.single("lm_head", c.vocab_size, c.hidden, dt));
  }

  const std::vector<float> inv_freq = c.rope_inv_freq();
  auto inv_freq_buffer = backend.allocate(inv_freq.size() * sizeof(float));
  if (!inv_freq_buffer) return inv_freq_buffer.error();
  weights.inv_freq = inv_freq_buffer->view(DType::kF32, 1, static_cast<int64_t>(inv_freq.size()));
  RUNAHEAD_RETURN_IF_ERROR(backend.copy_from_host(inv_freq.data(), weights.inv_freq));
  weights.storage.push_back(std::move(inv_freq_buffer).value());
  RUNAHEAD_RETURN_IF_ERROR(backend.synchronize());
  return weights;
}

}  // namespace runahead
