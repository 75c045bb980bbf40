// Model weights held by a backend, in the layout the forward pass wants.
#pragma once

#include <functional>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "kernels/backend.h"
#include "model/host_model.h"

namespace runahead {

struct LayerWeights {
  Tensor attn_norm, attn_norm_bias;
  Tensor wqkv, bqkv;  // fused: rows q | k | v
  Tensor wo, bo;
  Tensor mlp_norm, mlp_norm_bias;  // empty for a parallel block
  Tensor w_gate_up;                // SwiGLU: rows gate | up; GELU: up only
  Tensor b_up;
  Tensor w_down, b_down;
};

struct ModelWeights {
  ModelConfig config;
  Tensor token_embedding;
  std::vector<LayerWeights> layers;
  Tensor final_norm, final_norm_bias;
  Tensor lm_head;   // the embedding itself when tied
  Tensor inv_freq;  // f32 rotary inverse frequencies
  std::vector<Buffer> storage;
};

// Checks every tensor the config needs (present, right shape) and copies it to the backend in
// the backend's compute type, fusing q/k/v and gate/up. Errors name the tensor and the file.
// `progress`, when set, is told the bytes uploaded so far and the total after each tensor.
using UploadProgress = std::function<void(size_t done_bytes, size_t total_bytes)>;
[[nodiscard]] Result<ModelWeights> upload_weights(const HostModel& host, Backend& backend,
                                                  const UploadProgress& progress = {});

}  // namespace runahead
