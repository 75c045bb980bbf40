#include "model/model_hash.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace runahead {
namespace {

constexpr size_t kSampleBytes = 4096;

class Fnv1a {
 public:
  void bytes(const void* data, size_t size) {
    const auto* p = static_cast<const uint8_t*>(data);
    for (size_t i = 0; i < size; ++i) {
      state_ ^= p[i];
      state_ *= 0x100000001b3ull;
    }
  }
  template <typename T>
  void value(const T& v) {
    bytes(&v, sizeof v);
  }
  void text(const std::string& s) {
    value(s.size());
    bytes(s.data(), s.size());
  }
  uint64_t digest() const { return state_; }

 private:
  uint64_t state_ = 0xcbf29ce484222325ull;
};

void hash_config(Fnv1a& h, const ModelConfig& c) {
  h.value(c.architecture);
  for (int v : {c.n_layers, c.hidden, c.n_heads, c.n_kv_heads, c.head_dim, c.ffn_hidden,
                c.vocab_size, c.rotary_dim}) {
    h.value(v);
  }
  h.value(c.norm_eps);
  h.value(c.norm);
  h.value(c.activation);
  h.value(c.parallel_block);
  h.value(c.tied_embeddings);
  h.value(c.rope_theta);
  h.value(c.rope_style);
  h.value(c.rope_scaling.type);
  h.value(c.rope_scaling.factor);
  // Only when set, so that the hashes of models without a window (and the profiles that name
  // them) stay as they were.
  if (c.sliding_window > 0) h.value(c.sliding_window);
}

std::string hex_digest(const Fnv1a& h) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h.digest()));
  return hex;
}

}  // namespace

std::string model_hash(const HostModel& model) {
  Fnv1a h;
  hash_config(h, model.config);
  for (const auto& [name, tensor] : model.tensors) {  // std::map: sorted, so order-independent
    h.text(name);
    h.value(tensor.dtype);
    h.value(tensor.rows);
    h.value(tensor.cols);
    const size_t size = tensor.bytes();
    const auto* data = static_cast<const uint8_t*>(tensor.data);
    const size_t sample = std::min(size, kSampleBytes);
    h.bytes(data, sample);
    h.bytes(data + (size - sample) / 2, sample);
    h.bytes(data + size - sample, sample);
  }
  return hex_digest(h);
}

std::string generated_model_hash(const ModelConfig& config, const std::string& recipe) {
  Fnv1a h;
  hash_config(h, config);
  h.text("generated");
  h.text(recipe);
  return hex_digest(h);
}

}  // namespace runahead
