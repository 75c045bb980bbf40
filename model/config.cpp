#include "model/config.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace runahead {
namespace {

Status field_error(const std::string& field, int64_t value) {
  return make_error(ErrorCode::kInvalidArgument,
                    "model config: " + field + " = " + std::to_string(value) + " is invalid");
}

}  // namespace

Status ModelConfig::validate() const {
  if (n_layers <= 0 || n_layers > 4096) return field_error("n_layers", n_layers);
  if (hidden <= 0 || hidden > (1 << 18)) return field_error("hidden", hidden);
  if (n_heads <= 0 || n_heads > 4096) return field_error("n_heads", n_heads);
  if (n_kv_heads <= 0 || n_heads % n_kv_heads != 0) return field_error("n_kv_heads", n_kv_heads);
  if (head_dim <= 0 || head_dim > 1024) return field_error("head_dim", head_dim);
  if (ffn_hidden <= 0 || ffn_hidden > (1 << 20)) return field_error("ffn_hidden", ffn_hidden);
  if (vocab_size <= 0 || vocab_size > (1 << 24)) return field_error("vocab_size", vocab_size);
  if (max_positions <= 0) return field_error("max_positions", max_positions);
  if (rotary_dim < 0 || rotary_dim > head_dim || rotary_dim % 2 != 0) {
    return field_error("rotary_dim", rotary_dim);
  }
  if (!(norm_eps > 0.0f)) {
    return make_error(ErrorCode::kInvalidArgument, "model config: norm_eps must be positive");
  }
  if (!(rope_theta > 0.0f)) {
    return make_error(ErrorCode::kInvalidArgument, "model config: rope_theta must be positive");
  }
  if (bos_token >= vocab_size) return field_error("bos_token", bos_token);
  if (eos_token >= vocab_size) return field_error("eos_token", eos_token);
  if (sliding_window < 0) return field_error("sliding_window", sliding_window);
  return Status::ok();
}

std::vector<float> ModelConfig::rope_inv_freq() const {
  const int dims = rotary_dims();
  std::vector<float> inv_freq(static_cast<size_t>(dims / 2));
  for (int i = 0; i < dims / 2; ++i) {
    // Hugging Face: 1 / (base ** (arange(0, dim, 2).float() / dim)), in fp32.
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dims);
    inv_freq[i] = 1.0f / std::pow(rope_theta, exponent);
  }
  switch (rope_scaling.type) {
    case RopeScaling::Type::kNone:
      break;
    case RopeScaling::Type::kLinear:
      for (float& f : inv_freq) f /= rope_scaling.factor;
      break;
    case RopeScaling::Type::kLlama3: {
      const float old_context = static_cast<float>(rope_scaling.original_max_positions);
      const float low_freq_wavelen = old_context / rope_scaling.low_freq_factor;
      const float high_freq_wavelen = old_context / rope_scaling.high_freq_factor;
      for (float& f : inv_freq) {
        const float wavelen = 2.0f * std::numbers::pi_v<float> / f;
        if (wavelen > low_freq_wavelen) {
          f = f / rope_scaling.factor;
        } else if (wavelen >= high_freq_wavelen) {
          const float smooth = (old_context / wavelen - rope_scaling.low_freq_factor) /
                               (rope_scaling.high_freq_factor - rope_scaling.low_freq_factor);
          f = (1.0f - smooth) * f / rope_scaling.factor + smooth * f;
        }
      }
      break;
    }
  }
  return inv_freq;
}

int64_t ModelConfig::parameter_count() const {
  const int64_t h = hidden;
  const int64_t attention = h * qkv_dim() + static_cast<int64_t>(q_dim()) * h;
  const int64_t mlp = (activation == Activation::kSwiGlu ? 3 : 2) * h * ffn_hidden;
  const int64_t embeddings = static_cast<int64_t>(vocab_size) * h * (tied_embeddings ? 1 : 2);
  return n_layers * (attention + mlp) + embeddings;
}

double ModelConfig::prefill_flops(int64_t prefix, int64_t tokens) const {
  const double h = hidden;
  const double n = static_cast<double>(tokens);
  const double linear = 2.0 * n *
                        (h * qkv_dim() + static_cast<double>(q_dim()) * h +
                         (activation == Activation::kSwiGlu ? 3.0 : 2.0) * h * ffn_hidden);
  // Each query attends to prefix + its own causal part: QK^T and PV, 2 FLOPs per multiply-add.
  const double keys_seen = n * static_cast<double>(prefix) + n * (n + 1) / 2.0;
  const double attention = 4.0 * keys_seen * q_dim();
  return n_layers * (linear + attention);
}

Status check_sliding_window(int sliding_window, const std::string& model, int64_t prompt_tokens,
                            int64_t max_new_tokens) {
  const int64_t positions = prompt_tokens + std::max<int64_t>(max_new_tokens, 1) - 1;
  if (sliding_window <= 0 || positions <= sliding_window) return Status::ok();
  return make_error(ErrorCode::kUnsupported,
                    "a prompt of " + std::to_string(prompt_tokens) + " tokens with " +
                        std::to_string(max_new_tokens) + " new tokens needs " +
                        std::to_string(positions) + " positions, more than the sliding window of " +
                        std::to_string(sliding_window) + " of " + model +
                        "; sliding-window attention is not implemented (at most " +
                        std::to_string(sliding_window) + " positions per request)");
}

}  // namespace runahead
