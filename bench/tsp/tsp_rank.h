// One GPU of a tensor/sequence-parallel (TSP) prefill: its CUDA backend, a full copy of the
// random weights, a K/V cache for the whole context, activations for its own tokens, and the
// NCCL communicators of the per-layer all-gathers (bench/tsp/tsp_plan.h says who holds what).
//
// Per layer each rank computes Q/K/V of its tokens, writes its K/V into its cache rows, all-gathers
// the layer's K/V in place (every rank ends with rows [0, context)), attends its queries and
// finishes the layer. Everything, the all-gathers included, is enqueued on the backend's stream.
// With an emulated link (emulate_link) each all-gather is followed on that stream by a GPU-side
// wait of the link's time (bench/tsp/link_emulation.h).
#pragma once

#include <nccl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "bench/tsp/link_emulation.h"
#include "bench/tsp/tsp_plan.h"
#include "core/status.h"
#include "kernels/cuda/cuda_backend.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "model/weights.h"

namespace runahead::tsp {

// This rank's handles on the two communicators: `forward` numbers the ranks 0..P-1, `reversed`
// numbers rank r as P-1-r (the zigzag scheme's second gather, see tsp_plan.h).
struct RankComms {
  ncclComm_t forward = nullptr;
  ncclComm_t reversed = nullptr;
};

class TspRank {
 public:
  // Must run on the thread that will drive this rank (it selects `device` for that thread).
  // Weights are generated from `seed`, so every rank built with the same seed holds the same
  // model. Errors name the device and what did not fit.
  [[nodiscard]] static Result<std::unique_ptr<TspRank>> create(int device,
                                                               const ModelConfig& config,
                                                               uint64_t seed, int64_t max_context,
                                                               int64_t max_tokens);
  ~TspRank();
  TspRank(const TspRank&) = delete;
  TspRank& operator=(const TspRank&) = delete;

  // Every later all-gather is followed by a wait of `link`'s time for it (rate and this rank's
  // jitter draws), on top of the real transfer.
  void emulate_link(EmulatedLink link) { link_ = std::move(link); }

  // Enqueues this rank's part of the prefill of `prompt` (the whole prompt; the plan picks the
  // rank's tokens). Returns once everything is enqueued; synchronize() waits for it.
  [[nodiscard]] Status prefill(const Plan& plan, int rank, std::span<const int32_t> prompt,
                               const RankComms& comms);
  // After prefill(): final norm and LM head on this rank's last row (the prompt's last token
  // when this rank is plan.last_token_rank()); waits for the GPU.
  [[nodiscard]] Status last_token_logits(std::vector<float>& logits);
  // The same prompt through an ordinary single-GPU prefill (the correctness reference).
  [[nodiscard]] Status single_gpu_logits(std::span<const int32_t> prompt,
                                         std::vector<float>& logits);
  // Waits for the stream and the whole device; reports the backend's first failure.
  [[nodiscard]] Status synchronize();

  CudaBackend& gpu() { return *gpu_; }

 private:
  TspRank() = default;

  // Zigzag (tsp-strong) pieces; tsp-paper uses Transformer's own.
  void project_chunks(int layer, const std::vector<Chunk>& chunks);
  void attend_chunks(int layer, const std::vector<Chunk>& chunks);
  void finish_layer(int layer);
  // The masked part of the paper's dense attention: see the definition.
  void masked_attention_work(int layer, const Chunk& own, int64_t context);
  [[nodiscard]] Status gather(const Plan& plan, int rank, int layer, const RankComms& comms);
  [[nodiscard]] Status wait_for_link(int64_t bytes_per_rank, int ranks);
  void normalize(Tensor x, Tensor weight, Tensor bias, Tensor out);
  void add_normalize(Tensor residual, Tensor delta, Tensor weight, Tensor bias, Tensor out);

  std::unique_ptr<CudaBackend> gpu_;
  ModelWeights weights_;
  std::unique_ptr<Transformer> model_;
  Workspace ws_;
  KvCache cache_;
  std::vector<int32_t> tokens_;
  std::optional<EmulatedLink> link_;
};

}  // namespace runahead::tsp
