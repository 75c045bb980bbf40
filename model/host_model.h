// A checkpoint as loaded into host memory: its config and its tensors under canonical names.
//
// Loaders (Hugging Face safetensors directories, GGUF files) map their own tensor names onto the
// canonical ones below and keep the file mapped; upload_weights() then moves them to a backend.
//
// Canonical names (N is the layer index; biases only where the config asks for them):
//   token_embedding [vocab, hidden]      final_norm, final_norm_bias [1, hidden]
//   lm_head [vocab, hidden]              (absent when config.tied_embeddings)
//   layers.N.attn_norm, layers.N.attn_norm_bias [1, hidden]
//   layers.N.wq [q_dim, hidden], layers.N.wk, layers.N.wv [kv_dim, hidden]
//     or layers.N.wqkv [q_dim + 2 kv_dim, hidden] (already fused, rows q | k | v)
//   layers.N.bq, layers.N.bk, layers.N.bv or layers.N.bqkv   (config.qkv_bias)
//   layers.N.wo [hidden, q_dim], layers.N.bo                 (config.out_bias)
//   layers.N.mlp_norm, layers.N.mlp_norm_bias [1, hidden]    (absent for a parallel block)
//   layers.N.w_gate [ffn, hidden] (SwiGLU only), layers.N.w_up [ffn, hidden],
//   layers.N.w_down [hidden, ffn], layers.N.b_up, layers.N.b_down (config.mlp_bias)
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "model/config.h"

namespace runahead {

struct HostTensor {
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;  // contiguous rows, in memory kept alive by the HostModel
  std::string origin;          // "file: name in file", for messages

  size_t bytes() const { return static_cast<size_t>(rows * cols) * dtype_size(dtype); }
};

struct HostModel {
  ModelConfig config;
  std::string path;  // what was loaded, for messages
  std::map<std::string, HostTensor> tensors;
  std::vector<std::shared_ptr<const void>> keepalive;  // mappings and converted copies

  const HostTensor* find(const std::string& name) const {
    auto it = tensors.find(name);
    return it == tensors.end() ? nullptr : &it->second;
  }
};

// Loads a Hugging Face checkpoint directory (config.json + safetensors) or a .gguf file.
[[nodiscard]] Result<HostModel> load_model(const std::string& path);

}  // namespace runahead
