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
  Tensor logits;    // [logit_rows, vocab]
  // The layer whose attention norm `normed` already holds: the previous layer's last residual
  // add computes it in the same pass (-1: none). Code that writes `hidden` or `normed` other
  // than through Transformer sets it to -1.
  int normed_layer = -1;
};

// One request's next token in a batched decoding step: `token` at `position` of its own cache,
// which holds the request's rows [0, position) already.
struct DecodeRow {
  int32_t token = 0;
  int64_t position = 0;
  KvCache* cache = nullptr;
};

class Transformer {
 public:
  Transformer(const ModelWeights& weights, Backend& backend);

  const ModelConfig& config() const { return weights_.config; }
  Backend& backend() const { return backend_; }

  // Activations for up to `capacity` tokens and logits for up to `logit_rows` of them (a
  // decoding batch reads every row's logits; a prefill only its last token's).
  [[nodiscard]] Result<Workspace> make_workspace(int64_t capacity, int64_t logit_rows = 1) const;

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

  // --- batched decoding: one token of each of several requests, each with its own cache ---
  // Checks a batch: ids inside the vocabulary, each position inside its cache and the model's
  // limit, the batch inside the workspace. Errors name the row.
  [[nodiscard]] Status check_rows(std::span<const DecodeRow> rows, const Workspace& ws) const;
  // Runs a checked batch through every layer: the projections and the MLP of all rows are one
  // matrix product each (the weights are read once for the batch), attention is per row over its
  // own cache, and each row's K/V lands in its cache at its position. Each row's result equals
  // prefill_slice() of that one token. The hidden states stay in ws rows [0, rows.size()).
  void decode_rows(std::span<const DecodeRow> rows, Workspace& ws) const;
  // Final norm and LM head of every row of the batch: logits [rows, vocab], row-major, to the host.
  [[nodiscard]] Status rows_logits(Workspace& ws, std::vector<float>& logits) const;
  // The argmax of each row's logits, with only the indices leaving the backend.
  [[nodiscard]] Result<std::vector<int32_t>> rows_argmax(Workspace& ws) const;

 private:
  void normalize(Tensor x, Tensor weight, Tensor bias, Tensor out) const;
  // residual += delta; out = norm(residual), fused.
  void add_normalize(Tensor residual, Tensor delta, Tensor weight, Tensor bias, Tensor out) const;
  // Final norm and LM head of the slice's last token into ws.logits.
  void last_token_head(Workspace& ws) const;
  // Final norm and LM head of every row into ws.logits.
  void rows_head(Workspace& ws) const;
  // The two halves of project_qkv: norm and the fused Q/K/V product of every row in ws; then
  // rotary embedding and the cache write of `qkv` rows at positions [begin, begin + rows).
  void project(int layer, Workspace& ws) const;
  void rotate_and_store(int layer, Tensor qkv, int64_t begin, KvCache& cache) const;
  // The two halves of attend_and_finish: attention into ws.attn; then the output projection,
  // MLP and residuals of every row in ws.
  void finish_layer(int layer, Workspace& ws) const;
  AttentionArgs attention_args(Tensor q, Tensor out, int layer, int64_t begin, int64_t rows,
                               const KvCache& cache) const;

  const ModelWeights& weights_;
  Backend& backend_;
};

// Index of the largest value; the first on ties (as torch.argmax).
int32_t argmax(std::span<const float> values);

}  // namespace runahead
