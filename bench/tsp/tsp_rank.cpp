#include "bench/tsp/tsp_rank.h"

#include <cuda_runtime_api.h>

#include <cmath>
#include <string>

#include "bench/tsp/link_wait.h"
#include "model/random_model.h"

namespace runahead::tsp {
namespace {

Status nccl_status(ncclResult_t result, const std::string& what) {
  if (result == ncclSuccess) return Status::ok();
  return make_error(ErrorCode::kDevice, what + ": NCCL error " + ncclGetErrorString(result));
}

}  // namespace

Result<std::unique_ptr<TspRank>> TspRank::create(int device, const ModelConfig& config,
                                                 uint64_t seed, int64_t max_context,
                                                 int64_t max_tokens) {
  std::unique_ptr<TspRank> rank(new TspRank());
  RUNAHEAD_ASSIGN_OR_RETURN(rank->gpu_, CudaBackend::create(device));
  RUNAHEAD_ASSIGN_OR_RETURN(rank->weights_, generate_random_weights(config, *rank->gpu_, seed,
                                                                    random_weight_scale(config)));
  rank->model_ = std::make_unique<Transformer>(rank->weights_, *rank->gpu_);
  RUNAHEAD_ASSIGN_OR_RETURN(rank->ws_, rank->model_->make_workspace(max_tokens));
  RUNAHEAD_ASSIGN_OR_RETURN(rank->cache_, KvCache::create(*rank->gpu_, config, max_context));
  RUNAHEAD_RETURN_IF_ERROR(rank->gpu_->synchronize());
  return rank;
}

TspRank::~TspRank() = default;

void TspRank::normalize(Tensor x, Tensor weight, Tensor bias, Tensor out) {
  const ModelConfig& c = weights_.config;
  if (c.norm == NormKind::kRms) {
    gpu_->rms_norm(x, weight, c.norm_eps, out);
  } else {
    gpu_->layer_norm(x, weight, bias, c.norm_eps, out);
  }
}

void TspRank::add_normalize(Tensor residual, Tensor delta, Tensor weight, Tensor bias, Tensor out) {
  const ModelConfig& c = weights_.config;
  if (c.norm == NormKind::kRms) {
    gpu_->add_rms_norm(residual, delta, weight, c.norm_eps, out);
  } else {
    gpu_->add_layer_norm(residual, delta, weight, bias, c.norm_eps, out);
  }
}

Status TspRank::prefill(const Plan& plan, int rank, std::span<const int32_t> prompt,
                        const RankComms& comms) {
  const ModelConfig& c = weights_.config;
  if (rank < 0 || rank >= plan.ranks) {
    return make_error(ErrorCode::kInvalidArgument, "rank " + std::to_string(rank) +
                                                       " outside the plan's " +
                                                       std::to_string(plan.ranks) + " ranks");
  }
  if (static_cast<int64_t>(prompt.size()) != plan.context) {
    return make_error(ErrorCode::kInvalidArgument, "prompt of " + std::to_string(prompt.size()) +
                                                       " tokens for a plan of " +
                                                       std::to_string(plan.context));
  }
  if (plan.context > cache_.capacity() || plan.context > c.max_positions) {
    return make_error(ErrorCode::kOutOfRange,
                      "context of " + std::to_string(plan.context) + " tokens exceeds the cache (" +
                          std::to_string(cache_.capacity()) + ") or the model's positions (" +
                          std::to_string(c.max_positions) + ")");
  }
  const std::vector<Chunk>& chunks = plan.chunks[static_cast<size_t>(rank)];
  for (const Gather& g : plan.gathers) {
    // The all-gathers run in place: each rank's rows must already sit in its slot.
    if (chunks[g.chunk].begin != gather_destination(g, plan.ranks, rank) ||
        chunks[g.chunk].size() != g.rows_per_rank) {
      return make_error(ErrorCode::kInternal, "rank " + std::to_string(rank) + "'s chunk " +
                                                  std::to_string(g.chunk) +
                                                  " is not where its all-gather puts it");
    }
  }
  tokens_.clear();
  for (const Chunk& chunk : chunks) {
    tokens_.insert(tokens_.end(), prompt.begin() + chunk.begin, prompt.begin() + chunk.end);
  }
  // Token ids and activation capacity; positions were checked above for the whole context.
  RUNAHEAD_RETURN_IF_ERROR(model_->check_slice(tokens_, 0, ws_, cache_));

  model_->embed(tokens_, ws_);
  for (int layer = 0; layer < c.n_layers; ++layer) {
    if (plan.scheme == Scheme::kPaper) {
      const Chunk& own = chunks.front();
      model_->project_qkv(layer, own.begin, ws_, cache_);
      RUNAHEAD_RETURN_IF_ERROR(gather(plan, rank, layer, comms));
      masked_attention_work(layer, own, plan.context);
      model_->attend_and_finish(layer, own.begin, ws_, cache_);
    } else {
      project_chunks(layer, chunks);
      RUNAHEAD_RETURN_IF_ERROR(gather(plan, rank, layer, comms));
      attend_chunks(layer, chunks);
      finish_layer(layer);
    }
  }
  return Status::ok();
}

Status TspRank::gather(const Plan& plan, int rank, int layer, const RankComms& comms) {
  const std::vector<Chunk>& chunks = plan.chunks[static_cast<size_t>(rank)];
  for (const Gather& g : plan.gathers) {
    const Chunk& own = chunks[g.chunk];
    const Tensor send = cache_.block(layer, own.begin, own.end);
    const Tensor receive =
        cache_.block(layer, g.first_row, g.first_row + plan.ranks * g.rows_per_rank);
    const auto count = static_cast<size_t>(send.rows * send.cols);
    RUNAHEAD_RETURN_IF_ERROR(nccl_status(
        ncclAllGather(send.data, receive.data, count, ncclBfloat16,
                      g.reversed ? comms.reversed : comms.forward, gpu_->stream()),
        "all-gather of layer " + std::to_string(layer) + " K/V rows [" + std::to_string(own.begin) +
            ", " + std::to_string(own.end) + ") on rank " + std::to_string(rank)));
    RUNAHEAD_RETURN_IF_ERROR(wait_for_link(static_cast<int64_t>(send.bytes()), plan.ranks));
  }
  return Status::ok();
}

Status TspRank::wait_for_link(int64_t bytes_per_rank, int ranks) {
  if (!link_ || !link_->shape().active()) return Status::ok();
  RUNAHEAD_ASSIGN_OR_RETURN(const int64_t ns, link_->next_all_gather_ns(bytes_per_rank, ranks));
  const cudaError_t error = launch_link_wait(ns, gpu_->stream());
  if (error != cudaSuccess) {
    return make_error(ErrorCode::kDevice, gpu_->name() + ": emulated link wait of " +
                                              std::to_string(ns) +
                                              " ns: " + cudaGetErrorString(error));
  }
  return Status::ok();
}

// The paper's TSP attends each rank's queries to all `context` keys under the causal mask, so it
// computes the whole [n, context] score rectangle. Our attention kernels never touch tiles past
// the diagonal, so the rectangle is split: attend_and_finish computes the visible part (keys
// [0, end)) and this call computes the masked part, whose result is overwritten unused. It runs
// the same kernel over keys [begin, context) with queries placed at offset context - end, so
// every query scores every key in [end, context) plus a causal triangle over the rank's own
// keys; the two calls together score exactly n * context query-key pairs, the dense count.
void TspRank::masked_attention_work(int layer, const Chunk& own, int64_t context) {
  if (own.end >= context) return;  // the last rank's rectangle has no masked part
  const ModelConfig& c = weights_.config;
  const int64_t n = own.size();
  AttentionArgs attention{.q = ws_.qkv.rows_slice(0, n).cols_slice(0, c.q_dim()),
                          .k = cache_.keys(layer, own.begin, context),
                          .v = cache_.values(layer, own.begin, context),
                          .out = ws_.attn.rows_slice(0, n),
                          .n_heads = c.n_heads,
                          .n_kv_heads = c.n_kv_heads,
                          .head_dim = c.head_dim,
                          .q_begin = context - own.end,
                          .scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim))};
  gpu_->attention(attention);
}

void TspRank::project_chunks(int layer, const std::vector<Chunk>& chunks) {
  const ModelConfig& c = weights_.config;
  const LayerWeights& w = weights_.layers[static_cast<size_t>(layer)];
  const int64_t n = ws_.tokens;
  const Tensor hidden = ws_.hidden.rows_slice(0, n);
  const Tensor normed = ws_.normed.rows_slice(0, n);
  const Tensor qkv = ws_.qkv.rows_slice(0, n);
  // One norm and one projection over all of the rank's rows; rotary and cache rows per chunk.
  // The previous layer's last residual add may have computed the norm already.
  if (ws_.normed_layer != layer) normalize(hidden, w.attn_norm, w.attn_norm_bias, normed);
  ws_.normed_layer = -1;
  gpu_->matmul(normed, w.wqkv, w.bqkv, qkv);
  int64_t row = 0;
  for (const Chunk& chunk : chunks) {
    const Tensor rows = qkv.rows_slice(row, row + chunk.size());
    const Tensor k = rows.cols_slice(c.q_dim(), c.q_dim() + c.kv_dim());
    const Tensor v = rows.cols_slice(c.q_dim() + c.kv_dim(), c.qkv_dim());
    RopeArgs rope{.x = rows.cols_slice(0, c.q_dim()),
                  .n_heads = c.n_heads,
                  .head_dim = c.head_dim,
                  .rotary_dim = c.rotary_dims(),
                  .first_position = chunk.begin,
                  .inv_freq = weights_.inv_freq,
                  .style = c.rope_style};
    gpu_->rope(rope);
    rope.x = k;
    rope.n_heads = c.n_kv_heads;
    gpu_->rope(rope);
    gpu_->copy(k, cache_.keys(layer, chunk.begin, chunk.end));
    gpu_->copy(v, cache_.values(layer, chunk.begin, chunk.end));
    row += chunk.size();
  }
}

void TspRank::attend_chunks(int layer, const std::vector<Chunk>& chunks) {
  const ModelConfig& c = weights_.config;
  int64_t row = 0;
  for (const Chunk& chunk : chunks) {
    // Each chunk sees exactly its causal prefix [0, end): no fully masked tile is computed.
    AttentionArgs attention{
        .q = ws_.qkv.rows_slice(row, row + chunk.size()).cols_slice(0, c.q_dim()),
        .k = cache_.keys(layer, 0, chunk.end),
        .v = cache_.values(layer, 0, chunk.end),
        .out = ws_.attn.rows_slice(row, row + chunk.size()),
        .n_heads = c.n_heads,
        .n_kv_heads = c.n_kv_heads,
        .head_dim = c.head_dim,
        .q_begin = chunk.begin,
        .scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim))};
    gpu_->attention(attention);
    row += chunk.size();
  }
}

// The part of Transformer::attend_and_finish after the attention (output projection, MLP,
// residuals, the next layer's attention norm fused into the last add), over all of the rank's
// rows at once.
void TspRank::finish_layer(int layer) {
  const ModelConfig& c = weights_.config;
  const LayerWeights& w = weights_.layers[static_cast<size_t>(layer)];
  const int64_t n = ws_.tokens;
  const Tensor hidden = ws_.hidden.rows_slice(0, n);
  const Tensor normed = ws_.normed.rows_slice(0, n);
  const Tensor attn = ws_.attn.rows_slice(0, n);
  const Tensor attn_out = ws_.attn_out.rows_slice(0, n);
  const Tensor gate_up = ws_.gate_up.rows_slice(0, n);
  const Tensor mlp_act = ws_.mlp_act.rows_slice(0, n);
  const Tensor mlp_out = ws_.mlp_out.rows_slice(0, n);
  gpu_->matmul(attn, w.wo, w.bo, attn_out);
  if (!c.parallel_block) add_normalize(hidden, attn_out, w.mlp_norm, w.mlp_norm_bias, normed);
  gpu_->matmul(normed, w.w_gate_up, w.b_up, gate_up);
  if (c.activation == Activation::kSwiGlu) {
    gpu_->swiglu(gate_up, mlp_act);
  } else {
    gpu_->gelu(gate_up, mlp_act);
  }
  gpu_->matmul(mlp_act, w.w_down, w.b_down, mlp_out);
  if (c.parallel_block) gpu_->add(hidden, attn_out, hidden);
  if (layer + 1 < c.n_layers) {
    const LayerWeights& next = weights_.layers[static_cast<size_t>(layer) + 1];
    add_normalize(hidden, mlp_out, next.attn_norm, next.attn_norm_bias, normed);
    ws_.normed_layer = layer + 1;
  } else {
    gpu_->add(hidden, mlp_out, hidden);
  }
}

Status TspRank::last_token_logits(std::vector<float>& logits) {
  return model_->last_token_logits(ws_, logits);
}

Status TspRank::single_gpu_logits(std::span<const int32_t> prompt, std::vector<float>& logits) {
  RUNAHEAD_ASSIGN_OR_RETURN(Workspace ws,
                            model_->make_workspace(static_cast<int64_t>(prompt.size())));
  RUNAHEAD_RETURN_IF_ERROR(model_->prefill_slice(prompt, 0, ws, cache_));
  return model_->last_token_logits(ws, logits);
}

Status TspRank::synchronize() {
  RUNAHEAD_RETURN_IF_ERROR(gpu_->synchronize());
  const cudaError_t error = cudaDeviceSynchronize();
  if (error != cudaSuccess) {
    return make_error(ErrorCode::kDevice,
                      gpu_->name() + ": cudaDeviceSynchronize: " + cudaGetErrorString(error));
  }
  return Status::ok();
}

}  // namespace runahead::tsp
