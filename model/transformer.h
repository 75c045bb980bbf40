// The forward pass, one function per step of a layer, on any backend.
//
// KV-Runahead needs a layer to be split where a worker waits for its predecessor's K/V:
// project_qkv() writes the slice's own K/V into the cache; attend_and_finish() needs the cache
// rows [0, begin) to be in place too. A single process simply calls both in turn.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "kernels/backend.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace runahead {

// Activation buffers for slices of up to `capacity` tokens, allocated once and reused.
struct Workspace {
  int64_t capacity = 0;
  int64_t tokens = 0;  // rows in use for the current slice
  Buffer storage;
  Tensor hidden;    // [n, hidden]  residual stream
  Tensor normed;    // [n, hidden]
  Tensor qkv;       // [n, q_dim + 2 kv_dim]
  Tensor attn;      // [n, q_dim]
  Tensor attn_out;  // [n, hidden]
  Tensor mlp_act;   // [n, ffn] (SwiGLU product or GELU output)
  Tensor gate_up;   // [n, 2 ffn] (SwiGLU) or [n, ffn]
  Tensor mlp_out;   // [n, hidden]
  Tensor logits;    // [1, vocab]
  // The layer whose attention norm `normed` already holds: the previous layer's last residual
  // add computes it in the same pass (-1: none). Code that writes `hidden` or `normed` other
  // than through Transformer sets it to -1.
  int normed_layer = -1;
};

class Transformer {
 public:
  Transformer(const ModelWeights& weights, Backend& backend);

  const ModelConfig& config() const { return weights_.config; }
  Backend& backend() const { return backend_; }

  [[nodiscard]] Result<Workspace> make_workspace(int64_t capacity) const;

  // Checks a slice before it is run: ids inside the vocabulary, positions inside the cache and
  // the model's limit. Errors name the offending token index and value.
  [[nodiscard]] Status check_slice(std::span<const int32_t> tokens, int64_t begin,
                                   const Workspace& ws, const KvCache& cache) const;

  // Loads the slice's token embeddings into ws.hidden and sets ws.tokens.
  void embed(std::span<const int32_t> tokens, Workspace& ws) const;
  // Norm, Q/K/V projection and rotary embedding of the slice at positions [begin, begin + n);
  // writes its K/V into cache rows [begin, begin + n) of `layer`.
  void project_qkv(int layer, int64_t begin, Workspace& ws, KvCache& cache) const;
  // Attention over cache rows [0, begin + n) of `layer`, output projection, MLP and residuals;
  // the last residual add also leaves the next layer's attention norm in ws.normed.
  void attend_and_finish(int layer, int64_t begin, Workspace& ws, KvCache& cache) const;
  // Final norm and LM head on the slice's last token; logits come back to the host.
  [[nodiscard]] Status last_token_logits(Workspace& ws, std::vector<float>& logits) const;
  // Greedy decoding's token: argmax(last_token_logits()), with only the index leaving the
  // backend (not a vocabulary's worth of logits).
  [[nodiscard]] Result<int32_t> last_token_argmax(Workspace& ws) const;

  // Runs a checked slice through every layer, with the prefix [0, begin) already in the cache.
  [[nodiscard]] Status prefill_slice(std::span<const int32_t> tokens, int64_t begin, Workspace& ws,
                                     KvCache& cache) const;

 private:
  void normalize(Tensor x, Tensor weight, Tensor bias, Tensor out) const;
  // residual += delta; out = norm(residual), fused.
  void add_normalize(Tensor residual, Tensor delta, Tensor weight, Tensor bias, Tensor out) const;
  // Final norm and LM head of the slice's last token into ws.logits.
  void last_token_head(Workspace& ws) const;

  const ModelWeights& weights_;
  Backend& backend_;
};

// Index of the largest value; the first on ties (as torch.argmax).
int32_t argmax(std::span<const float> values);

}  // namespace runahead
