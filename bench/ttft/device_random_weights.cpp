#include "bench/ttft/device_random_weights.h"

#include <cmath>
#include <string>
#include <vector>

namespace runahead {
namespace {

class RandomWeightMaker {
 public:
  RandomWeightMaker(CudaBackend& gpu, ModelWeights& weights, uint64_t seed)
      : gpu_(gpu), weights_(weights), seed_(seed) {}

  Result<Tensor> make(const std::string& name, int64_t rows, int64_t cols, float scale,
                      float offset) {
    auto buffer = gpu_.allocate(static_cast<size_t>(rows * cols) * 2);
    if (!buffer) {
      return make_error(buffer.error().code, "random weight " + name + " [" + std::to_string(rows) +
                                                 ", " + std::to_string(cols) +
                                                 "]: " + buffer.error().message);
    }
    const Tensor t = buffer->view(DType::kBF16, rows, cols);
    gpu_.fill_uniform(t, seed_ + counter_++, scale, offset);
    weights_.storage.push_back(std::move(buffer).value());
    return t;
  }

 private:
  CudaBackend& gpu_;
  ModelWeights& weights_;
  uint64_t seed_;
  uint64_t counter_ = 0;
};

}  // namespace

Result<ModelWeights> device_random_weights(const ModelConfig& c, CudaBackend& gpu, uint64_t seed) {
  RUNAHEAD_RETURN_IF_ERROR(c.validate());
  ModelWeights w;
  w.config = c;
  RandomWeightMaker maker(gpu, w, seed);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.hidden));
  const bool layer_norm = c.norm == NormKind::kLayer;
  const int64_t gate_up_rows =
      c.activation == Activation::kSwiGlu ? 2 * int64_t{c.ffn_hidden} : c.ffn_hidden;

  RUNAHEAD_ASSIGN_OR_RETURN(w.token_embedding,
                            maker.make("token_embedding", c.vocab_size, c.hidden, 1.0f, 0.0f));
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    LayerWeights layer;
    RUNAHEAD_ASSIGN_OR_RETURN(layer.attn_norm,
                              maker.make(p + "attn_norm", 1, c.hidden, 0.1f, 1.0f));
    if (layer_norm) {
      RUNAHEAD_ASSIGN_OR_RETURN(layer.attn_norm_bias,
                                maker.make(p + "attn_norm_bias", 1, c.hidden, 0.1f, 0.0f));
    }
    RUNAHEAD_ASSIGN_OR_RETURN(layer.wqkv,
                              maker.make(p + "wqkv", c.qkv_dim(), c.hidden, scale, 0.0f));
    if (c.qkv_bias) {
      RUNAHEAD_ASSIGN_OR_RETURN(layer.bqkv, maker.make(p + "bqkv", 1, c.qkv_dim(), scale, 0.0f));
    }
    RUNAHEAD_ASSIGN_OR_RETURN(layer.wo, maker.make(p + "wo", c.hidden, c.q_dim(), scale, 0.0f));
    if (c.out_bias) {
      RUNAHEAD_ASSIGN_OR_RETURN(layer.bo, maker.make(p + "bo", 1, c.hidden, scale, 0.0f));
    }
    if (!c.parallel_block) {
      RUNAHEAD_ASSIGN_OR_RETURN(layer.mlp_norm,
                                maker.make(p + "mlp_norm", 1, c.hidden, 0.1f, 1.0f));
      if (layer_norm) {
        RUNAHEAD_ASSIGN_OR_RETURN(layer.mlp_norm_bias,
                                  maker.make(p + "mlp_norm_bias", 1, c.hidden, 0.1f, 0.0f));
      }
    }
    RUNAHEAD_ASSIGN_OR_RETURN(layer.w_gate_up,
                              maker.make(p + "w_gate_up", gate_up_rows, c.hidden, scale, 0.0f));
    RUNAHEAD_ASSIGN_OR_RETURN(layer.w_down,
                              maker.make(p + "w_down", c.hidden, c.ffn_hidden,
                                         1.0f / std::sqrt(static_cast<float>(c.ffn_hidden)), 0.0f));
    if (c.mlp_bias) {
      RUNAHEAD_ASSIGN_OR_RETURN(layer.b_up, maker.make(p + "b_up", 1, c.ffn_hidden, scale, 0.0f));
      RUNAHEAD_ASSIGN_OR_RETURN(layer.b_down, maker.make(p + "b_down", 1, c.hidden, scale, 0.0f));
    }
    w.layers.push_back(layer);
  }
  RUNAHEAD_ASSIGN_OR_RETURN(w.final_norm, maker.make("final_norm", 1, c.hidden, 0.1f, 1.0f));
  if (layer_norm) {
    RUNAHEAD_ASSIGN_OR_RETURN(w.final_norm_bias,
                              maker.make("final_norm_bias", 1, c.hidden, 0.1f, 0.0f));
  }
  if (c.tied_embeddings) {
    w.lm_head = w.token_embedding;
  } else {
    RUNAHEAD_ASSIGN_OR_RETURN(w.lm_head,
                              maker.make("lm_head", c.vocab_size, c.hidden, scale, 0.0f));
  }
  const std::vector<float> inv_freq = c.rope_inv_freq();
  auto inv_freq_buffer = gpu.allocate(inv_freq.size() * sizeof(float));
  if (!inv_freq_buffer) return inv_freq_buffer.error();
  w.inv_freq = inv_freq_buffer->view(DType::kF32, 1, static_cast<int64_t>(inv_freq.size()));
  RUNAHEAD_RETURN_IF_ERROR(gpu.copy_from_host(inv_freq.data(), w.inv_freq));
  w.storage.push_back(std::move(inv_freq_buffer).value());
  RUNAHEAD_RETURN_IF_ERROR(gpu.synchronize());
  return w;
}

}  // namespace runahead
