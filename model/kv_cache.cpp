#include "model/kv_cache.h"

#include <cassert>
#include <string>

namespace runahead {

Result<KvCache> KvCache::create(Backend& backend, const ModelConfig& config,
                                int64_t capacity_tokens) {
  return create(backend, config, capacity_tokens,
                [&backend](size_t bytes) { return backend.allocate(bytes); });
}

Result<KvCache> KvCache::create(Backend& backend, const ModelConfig& config,
                                int64_t capacity_tokens,
                                const std::function<Result<Buffer>(size_t bytes)>& allocate) {
  if (capacity_tokens <= 0) {
    return make_error(ErrorCode::kInvalidArgument, "kv cache: capacity must be positive, got " +
                                                       std::to_string(capacity_tokens));
  }
  KvCache cache;
  cache.dtype_ = backend.compute_dtype();
  cache.n_layers_ = config.n_layers;
  cache.kv_dim_ = config.kv_dim();
  cache.capacity_ = capacity_tokens;
  const size_t bytes = static_cast<size_t>(config.n_layers) * cache.block_bytes(capacity_tokens);
  auto buffer = allocate(bytes);
  if (!buffer) {
    return make_error(ErrorCode::kResourceExhausted,
                      "kv cache of " + std::to_string(capacity_tokens) + " tokens (" +
                          std::to_string(bytes >> 20) + " MiB) does not fit on " + backend.name() +
                          ": " + buffer.error().message);
  }
  cache.buffer_ = std::move(buffer).value();
  return cache;
}

Tensor KvCache::block(int layer, int64_t begin, int64_t end) const {
  assert(0 <= layer && layer < n_layers_);
  const int64_t row = 2 * static_cast<int64_t>(kv_dim_);
  Tensor whole = Tensor::matrix(
      static_cast<char*>(buffer_.data()) + static_cast<size_t>(layer) * block_bytes(capacity_),
      dtype_, capacity_, row);
  return whole.rows_slice(begin, end);
}

}  // namespace runahead
