// Small random-weight models for tests (model/random_model.h), loaded on the CPU backend.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/random_model.h"
#include "model/transformer.h"

namespace runahead::testing {

// Llama-style config with odd sizes (head_dim 12, GQA 6/2, vocab 97).
ModelConfig tiny_llama_config();
// Falcon-style: LayerNorm with bias, GELU, parallel block, one KV head.
ModelConfig tiny_falcon_config();

using runahead::random_host_model;

// Random token ids in [0, vocab).
std::vector<int32_t> random_tokens(int count, int vocab, uint64_t seed);

// A model uploaded to a backend, ready to run.
struct LoadedModel {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<ModelWeights> weights;
  std::unique_ptr<Transformer> transformer;  // refers to *weights and *backend
};
LoadedModel load_on_cpu(const HostModel& host);
// The same on `backend` (a decorated CPU backend, say).
LoadedModel load_on(const HostModel& host, std::unique_ptr<Backend> backend);

}  // namespace runahead::testing
