// The shape of a transformer, independent of the file it was loaded from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "kernels/backend.h"

namespace runahead {

enum class Architecture : uint8_t {
  kLlama,   // Llama-2/3, Mistral, SmolLM2: RMSNorm, SwiGLU, sequential block
  kFalcon,  // Falcon-7B: LayerNorm with bias, GELU, attention and MLP in parallel
};

enum class NormKind : uint8_t { kRms, kLayer };
enum class Activation : uint8_t { kSwiGlu, kGelu };

struct RopeScaling {
  enum class Type : uint8_t { kNone, kLinear, kLlama3 };
  Type type = Type::kNone;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;   // llama3
  float high_freq_factor = 4.0f;  // llama3
  int original_max_positions = 8192;
};

struct ModelConfig {
  Architecture architecture = Architecture::kLlama;
  std::string architecture_name;  // as the checkpoint names it, for messages
  int n_layers = 0;
  int hidden = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int ffn_hidden = 0;
  int vocab_size = 0;
  int max_positions = 0;
  float norm_eps = 1e-5f;
  NormKind norm = NormKind::kRms;
  Activation activation = Activation::kSwiGlu;
  bool parallel_block = false;  // Falcon: attention and MLP both read the same normed input
  bool qkv_bias = false;
  bool out_bias = false;
  bool mlp_bias = false;
  bool tied_embeddings = false;
  float rope_theta = 10000.0f;
  int rotary_dim = 0;  // 0 means head_dim
  RopeStyle rope_style = RopeStyle::kHalf;
  RopeScaling rope_scaling;
  int32_t bos_token = -1;
  int32_t eos_token = -1;
  // Mistral's sliding-window attention: a query sees only the last `sliding_window` positions
  // (itself included). Not implemented: attention always covers the whole prefix, which equals
  // the model only while a request's positions stay inside the window, so longer requests are
  // refused (check_sliding_window). 0: no window, or one no smaller than max_positions.
  int sliding_window = 0;

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  int qkv_dim() const { return q_dim() + 2 * kv_dim(); }
  int rotary_dims() const { return rotary_dim > 0 ? rotary_dim : head_dim; }

  // Checks that the numbers are consistent; names the first field that is not.
  Status validate() const;
  // The rotary inverse frequencies, scaling applied, as Hugging Face computes them (fp32).
  std::vector<float> rope_inv_freq() const;
  // Parameters in the transformer (embedding and LM head counted once when tied).
  int64_t parameter_count() const;
  // Floating-point operations of a prefill of `tokens` tokens starting after `prefix` tokens.
  double prefill_flops(int64_t prefix, int64_t tokens) const;
};

// Refuses a request that would run more positions than the model's sliding window (see
// ModelConfig::sliding_window): the prompt and every generated token but the last, which is
// never fed back. `model` names the model in the message. Ok when `sliding_window` is 0.
[[nodiscard]] Status check_sliding_window(int sliding_window, const std::string& model,
                                          int64_t prompt_tokens, int64_t max_new_tokens);

}  // namespace runahead
