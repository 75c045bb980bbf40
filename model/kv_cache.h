// The key/value cache of one request on one backend.
//
// Layer l is one [capacity, 2 * kv_dim] matrix: row t holds token t's keys, then its values.
// The K/V of a token range [a, b) of a layer is therefore one contiguous block, which a
// predecessor's message can be received straight into (block()), and which is forwarded as is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "core/status.h"
#include "core/tensor.h"
#include "kernels/backend.h"
#include "model/config.h"

namespace runahead {

class KvCache {
 public:
  [[nodiscard]] static Result<KvCache> create(Backend& backend, const ModelConfig& config,
                                              int64_t capacity_tokens);
  // The same, with the memory from `allocate` (a pool of the backend's buffers).
  [[nodiscard]] static Result<KvCache> create(
      Backend& backend, const ModelConfig& config, int64_t capacity_tokens,
      const std::function<Result<Buffer>(size_t bytes)>& allocate);
  KvCache() = default;

  int64_t capacity() const { return capacity_; }
  int n_layers() const { return n_layers_; }
  int kv_dim() const { return kv_dim_; }

  // Rows [begin, end) of layer `layer`: keys in columns [0, kv_dim), values after them.
  Tensor block(int layer, int64_t begin, int64_t end) const;
  Tensor keys(int layer, int64_t begin, int64_t end) const {
    return block(layer, begin, end).cols_slice(0, kv_dim_);
  }
  Tensor values(int layer, int64_t begin, int64_t end) const {
    return block(layer, begin, end).cols_slice(kv_dim_, 2 * kv_dim_);
  }
  size_t bytes_per_token() const { return 2 * static_cast<size_t>(kv_dim_) * dtype_size(dtype_); }
  size_t block_bytes(int64_t tokens) const {
    return static_cast<size_t>(tokens) * bytes_per_token();
  }
  DType dtype() const { return dtype_; }

 private:
  Buffer buffer_;
  DType dtype_ = DType::kF32;
  int n_layers_ = 0;
  int kv_dim_ = 0;
  int64_t capacity_ = 0;
};

}  // namespace runahead
