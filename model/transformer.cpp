#include "model/transformer.h"

#include <cmath>
#include <string>

namespace runahead {

Transformer::Transformer(const ModelWeights& weights, Backend& backend)
    : weights_(weights), backend_(backend) {}

Result<Workspace> Transformer::make_workspace(int64_t capacity, int64_t logit_rows) const {
  const ModelConfig& c = config();
  if (capacity <= 0 || logit_rows <= 0 || logit_rows > capacity) {
    return make_error(ErrorCode::kInvalidArgument,
                      "workspace capacity must be positive and hold the logit rows, got " +
                          std::to_string(capacity) + " tokens and " + std::to_string(logit_rows) +
                          " logit rows");
  }
  const int64_t gate_up_cols =
      c.activation == Activation::kSwiGlu ? 2 * int64_t{c.ffn_hidden} : c.ffn_hidden;
  const int64_t per_token =
      4 * int64_t{c.hidden} + c.qkv_dim() + c.q_dim() + c.ffn_hidden + gate_up_cols;
  const DType dt = backend_.compute_dtype();
  const size_t bytes =
      static_cast<size_t>(per_token * capacity + logit_rows * c.vocab_size) * dtype_size(dt);
  auto storage = backend_.allocate(bytes);
  if (!storage) {
    return make_error(ErrorCode::kResourceExhausted,
                      "activations for " + std::to_string(capacity) + " tokens do not fit on " +
                          backend_.name() + ": " + storage.error().message);
  }
  Workspace ws;
  ws.capacity = capacity;
  ws.storage = std::move(storage).value();
  char* cursor = static_cast<char*>(ws.storage.data());
  auto carve = [&](int64_t rows, int64_t cols) {
    Tensor t = Tensor::matrix(cursor, dt, rows, cols);
    cursor += t.bytes();
    return t;
  };
  ws.hidden = carve(capacity, c.hidden);
  ws.normed = carve(capacity, c.hidden);
  ws.qkv = carve(capacity, c.qkv_dim());
  ws.attn = carve(capacity, c.q_dim());
  ws.attn_out = carve(capacity, c.hidden);
  ws.mlp_act = carve(capacity, c.ffn_hidden);
  ws.gate_up = carve(capacity, gate_up_cols);
  ws.mlp_out = carve(capacity, c.hidden);
  ws.logits = carve(logit_rows, c.vocab_size);
  return ws;
}

Status Transformer::check_slice(std::span<const int32_t> tokens, int64_t begin, const Workspace& ws,
                                const KvCache& cache) const {
  const ModelConfig& c = config();
  const auto n = static_cast<int64_t>(tokens.size());
  if (n == 0) return make_error(ErrorCode::kInvalidArgument, "empty slice: no tokens to run");
  if (begin < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "slice start " + std::to_string(begin) + " is negative");
  }
  if (begin + n > c.max_positions) {
    return make_error(ErrorCode::kOutOfRange, "positions up to " + std::to_string(begin + n) +
                                                  " exceed the model's limit of " +
                                                  std::to_string(c.max_positions) + " (" +
                                                  c.architecture_name + ")");
  }
  if (begin + n > cache.capacity()) {
    return make_error(ErrorCode::kOutOfRange, "positions up to " + std::to_string(begin + n) +
                                                  " exceed the kv cache capacity of " +
                                                  std::to_string(cache.capacity()));
  }
  if (n > ws.capacity) {
    return make_error(ErrorCode::kOutOfRange, "slice of " + std::to_string(n) +
                                                  " tokens exceeds the workspace capacity of " +
                                                  std::to_string(ws.capacity));
  }
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size) {
      return make_error(ErrorCode::kOutOfRange,
                        "token " + std::to_string(i) + " of the slice has id " +
                            std::to_string(tokens[i]) + ", outside the vocabulary [0, " +
                            std::to_string(c.vocab_size) + ")");
    }
  }
  return Status::ok();
}

void Transformer::normalize(Tensor x, Tensor weight, Tensor bias, Tensor out) const {
  if (config().norm == NormKind::kRms) {
    backend_.rms_norm(x, weight, config().norm_eps, out);
  } else {
    backend_.layer_norm(x, weight, bias, config().norm_eps, out);
  }
}

void Transformer::add_normalize(Tensor residual, Tensor delta, Tensor weight, Tensor bias,
                                Tensor out) const {
  if (config().norm == NormKind::kRms) {
    backend_.add_rms_norm(residual, delta, weight, config().norm_eps, out);
  } else {
    backend_.add_layer_norm(residual, delta, weight, bias, config().norm_eps, out);
  }
}

void Transformer::embed(std::span<const int32_t> tokens, Workspace& ws) const {
  ws.tokens = static_cast<int64_t>(tokens.size());
  ws.normed_layer = -1;
  backend_.embed(weights_.token_embedding, tokens.data(), ws.hidden.rows_slice(0, ws.tokens));
}

void Transformer::project_qkv(int layer, int64_t begin, Workspace& ws, KvCache& cache) const {
  project(layer, ws);
  rotate_and_store(layer, ws.qkv.rows_slice(0, ws.tokens), begin, cache);
}

void Transformer::project(int layer, Workspace& ws) const {
  const LayerWeights& w = weights_.layers[layer];
  const int64_t n = ws.tokens;
  const Tensor hidden = ws.hidden.rows_slice(0, n);
  const Tensor normed = ws.normed.rows_slice(0, n);
  if (ws.normed_layer != layer) normalize(hidden, w.attn_norm, w.attn_norm_bias, normed);
  ws.normed_layer = -1;
  backend_.matmul(normed, w.wqkv, w.bqkv, ws.qkv.rows_slice(0, n));
}

void Transformer::rotate_and_store(int layer, Tensor qkv, int64_t begin, KvCache& cache) const {
  const ModelConfig& c = config();
  const Tensor q = qkv.cols_slice(0, c.q_dim());
  const Tensor k = qkv.cols_slice(c.q_dim(), c.q_dim() + c.kv_dim());
  const Tensor v = qkv.cols_slice(c.q_dim() + c.kv_dim(), c.qkv_dim());
  RopeArgs rope{.x = q,
                .n_heads = c.n_heads,
                .head_dim = c.head_dim,
                .rotary_dim = c.rotary_dims(),
                .first_position = begin,
                .inv_freq = weights_.inv_freq,
                .style = c.rope_style};
  backend_.rope(rope);
  rope.x = k;
  rope.n_heads = c.n_kv_heads;
  backend_.rope(rope);

  backend_.copy(k, cache.keys(layer, begin, begin + qkv.rows));
  backend_.copy(v, cache.values(layer, begin, begin + qkv.rows));
}

AttentionArgs Transformer::attention_args(Tensor q, Tensor out, int layer, int64_t begin,
                                          int64_t rows, const KvCache& cache) const {
  const ModelConfig& c = config();
  return AttentionArgs{.q = q,
                       .k = cache.keys(layer, 0, begin + rows),
                       .v = cache.values(layer, 0, begin + rows),
                       .out = out,
                       .n_heads = c.n_heads,
                       .n_kv_heads = c.n_kv_heads,
                       .head_dim = c.head_dim,
                       .q_begin = begin,
                       .scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim))};
}

void Transformer::attend_and_finish(int layer, int64_t begin, Workspace& ws, KvCache& cache) const {
  const int64_t n = ws.tokens;
  backend_.attention(attention_args(ws.qkv.rows_slice(0, n).cols_slice(0, config().q_dim()),
                                    ws.attn.rows_slice(0, n), layer, begin, n, cache));
  finish_layer(layer, ws);
}

void Transformer::finish_layer(int layer, Workspace& ws) const {
  const ModelConfig& c = config();
  const LayerWeights& w = weights_.layers[layer];
  const int64_t n = ws.tokens;
  const Tensor hidden = ws.hidden.rows_slice(0, n);
  const Tensor normed = ws.normed.rows_slice(0, n);
  const Tensor attn = ws.attn.rows_slice(0, n);
  const Tensor attn_out = ws.attn_out.rows_slice(0, n);
  const Tensor gate_up = ws.gate_up.rows_slice(0, n);
  const Tensor mlp_act = ws.mlp_act.rows_slice(0, n);
  const Tensor mlp_out = ws.mlp_out.rows_slice(0, n);

  backend_.matmul(attn, w.wo, w.bo, attn_out);

  // Sequential block: h += attn; h += mlp(norm(h)). Parallel (Falcon): h += attn + mlp(normed).
  if (!c.parallel_block) add_normalize(hidden, attn_out, w.mlp_norm, w.mlp_norm_bias, normed);
  backend_.matmul(normed, w.w_gate_up, w.b_up, gate_up);
  if (c.activation == Activation::kSwiGlu) {
    backend_.swiglu(gate_up, mlp_act);
  } else {
    backend_.gelu(gate_up, mlp_act);
  }
  backend_.matmul(mlp_act, w.w_down, w.b_down, mlp_out);
  if (c.parallel_block) backend_.add(hidden, attn_out, hidden);

  // The last residual add also computes the next layer's attention norm (project_qkv skips it).
  if (layer + 1 < c.n_layers) {
    const LayerWeights& next = weights_.layers[layer + 1];
    add_normalize(hidden, mlp_out, next.attn_norm, next.attn_norm_bias, normed);
    ws.normed_layer = layer + 1;
  } else {
    backend_.add(hidden, mlp_out, hidden);
  }
}

void Transformer::last_token_head(Workspace& ws) const {
  const Tensor last = ws.hidden.rows_slice(ws.tokens - 1, ws.tokens);
  const Tensor last_normed = ws.normed.rows_slice(0, 1);
  normalize(last, weights_.final_norm, weights_.final_norm_bias, last_normed);
  backend_.matmul(last_normed, weights_.lm_head, Tensor{}, ws.logits);
}

Status Transformer::last_token_logits(Workspace& ws, std::vector<float>& logits) const {
  const ModelConfig& c = config();
  last_token_head(ws);
  logits.resize(static_cast<size_t>(c.vocab_size));
  if (ws.logits.dtype == DType::kF32) return backend_.copy_to_host(ws.logits, logits.data());
  std::vector<uint16_t> narrow(logits.size());
  RUNAHEAD_RETURN_IF_ERROR(backend_.copy_to_host(ws.logits, narrow.data()));
  convert_to_f32(ws.logits.dtype, narrow.data(), logits.data(), logits.size());
  return Status::ok();
}

Result<int32_t> Transformer::last_token_argmax(Workspace& ws) const {
  last_token_head(ws);
  return backend_.argmax(ws.logits);
}

void Transformer::rows_head(Workspace& ws) const {
  const int64_t n = ws.tokens;
  normalize(ws.hidden.rows_slice(0, n), weights_.final_norm, weights_.final_norm_bias,
            ws.normed.rows_slice(0, n));
  backend_.matmul(ws.normed.rows_slice(0, n), weights_.lm_head, Tensor{},
                  ws.logits.rows_slice(0, n));
}

Status Transformer::rows_logits(Workspace& ws, std::vector<float>& logits) const {
  rows_head(ws);
  const Tensor rows = ws.logits.rows_slice(0, ws.tokens);
  logits.resize(static_cast<size_t>(rows.rows * rows.cols));
  if (rows.dtype == DType::kF32) return backend_.copy_to_host(rows, logits.data());
  std::vector<uint16_t> narrow(logits.size());
  RUNAHEAD_RETURN_IF_ERROR(backend_.copy_to_host(rows, narrow.data()));
  convert_to_f32(rows.dtype, narrow.data(), logits.data(), logits.size());
  return Status::ok();
}

Result<std::vector<int32_t>> Transformer::rows_argmax(Workspace& ws) const {
  rows_head(ws);
  std::vector<int32_t> tokens(static_cast<size_t>(ws.tokens));
  for (int64_t r = 0; r < ws.tokens; ++r) {
    RUNAHEAD_ASSIGN_OR_RETURN(tokens[static_cast<size_t>(r)],
                              backend_.argmax(ws.logits.rows_slice(r, r + 1)));
  }
  return tokens;
}

Status Transformer::check_rows(std::span<const DecodeRow> rows, const Workspace& ws) const {
  const ModelConfig& c = config();
  const auto n = static_cast<int64_t>(rows.size());
  if (n == 0) return make_error(ErrorCode::kInvalidArgument, "empty decoding batch");
  if (n > ws.capacity || n > ws.logits.rows) {
    return make_error(ErrorCode::kOutOfRange, "decoding batch of " + std::to_string(n) +
                                                  " rows exceeds the workspace (" +
                                                  std::to_string(ws.capacity) + " tokens, " +
                                                  std::to_string(ws.logits.rows) + " logit rows)");
  }
  for (int64_t i = 0; i < n; ++i) {
    const DecodeRow& row = rows[static_cast<size_t>(i)];
    const std::string name = "row " + std::to_string(i) + " of the decoding batch";
    if (row.cache == nullptr) {
      return make_error(ErrorCode::kInvalidArgument, name + " has no cache");
    }
    if (row.token < 0 || row.token >= c.vocab_size) {
      return make_error(ErrorCode::kOutOfRange,
                        name + " has token id " + std::to_string(row.token) +
                            ", outside the vocabulary [0, " + std::to_string(c.vocab_size) + ")");
    }
    if (row.position < 0 || row.position >= row.cache->capacity() ||
        row.position >= c.max_positions) {
      return make_error(ErrorCode::kOutOfRange,
                        name + " is at position " + std::to_string(row.position) +
                            ", outside its cache of " + std::to_string(row.cache->capacity()) +
                            " rows or the model's limit of " + std::to_string(c.max_positions));
    }
  }
  return Status::ok();
}

void Transformer::decode_rows(std::span<const DecodeRow> rows, Workspace& ws) const {
  const ModelConfig& c = config();
  const auto n = static_cast<int64_t>(rows.size());
  std::vector<int32_t> tokens(rows.size());
  std::vector<int64_t> positions(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    tokens[r] = rows[r].token;
    positions[r] = rows[r].position;
  }
  embed(tokens, ws);
  std::vector<AttentionArgs> attention(rows.size());
  for (int layer = 0; layer < c.n_layers; ++layer) {
    project(layer, ws);
    const Tensor qkv = ws.qkv.rows_slice(0, n);
    if (n == 1) {
      rotate_and_store(layer, qkv, positions[0], *rows[0].cache);  // as prefill_slice
    } else {
      const Tensor q = qkv.cols_slice(0, c.q_dim());
      const Tensor k = qkv.cols_slice(c.q_dim(), c.q_dim() + c.kv_dim());
      const Tensor v = qkv.cols_slice(c.q_dim() + c.kv_dim(), c.qkv_dim());
      RopeArgs rope{.x = q,
                    .n_heads = c.n_heads,
                    .head_dim = c.head_dim,
                    .rotary_dim = c.rotary_dims(),
                    .first_position = 0,
                    .inv_freq = weights_.inv_freq,
                    .style = c.rope_style};
      backend_.rope_rows(rope, positions);
      rope.x = k;
      rope.n_heads = c.n_kv_heads;
      backend_.rope_rows(rope, positions);
      for (int64_t r = 0; r < n; ++r) {
        const DecodeRow& row = rows[static_cast<size_t>(r)];
        backend_.copy(k.rows_slice(r, r + 1),
                      row.cache->keys(layer, row.position, row.position + 1));
        backend_.copy(v.rows_slice(r, r + 1),
                      row.cache->values(layer, row.position, row.position + 1));
      }
    }
    for (int64_t r = 0; r < n; ++r) {
      const DecodeRow& row = rows[static_cast<size_t>(r)];
      attention[static_cast<size_t>(r)] =
          attention_args(qkv.rows_slice(r, r + 1).cols_slice(0, c.q_dim()),
                         ws.attn.rows_slice(r, r + 1), layer, row.position, 1, *row.cache);
    }
    if (n == 1) {
      backend_.attention(attention[0]);  // as prefill_slice
    } else {
      backend_.decode_attention(attention);
    }
    finish_layer(layer, ws);
  }
}

Status Transformer::prefill_slice(std::span<const int32_t> tokens, int64_t begin, Workspace& ws,
                                  KvCache& cache) const {
  RUNAHEAD_RETURN_IF_ERROR(check_slice(tokens, begin, ws, cache));
  embed(tokens, ws);
  for (int layer = 0; layer < config().n_layers; ++layer) {
    project_qkv(layer, begin, ws, cache);
    attend_and_finish(layer, begin, ws, cache);
  }
  return backend_.synchronize();
}

int32_t argmax(std::span<const float> values) {
  int32_t best = 0;
  for (size_t i = 1; i < values.size(); ++i) {
    if (values[i] > values[best]) best = static_cast<int32_t>(i);
  }
  return best;
}

}  // namespace runahead
