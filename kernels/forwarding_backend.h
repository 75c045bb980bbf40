// A backend that hands every call to another one. Decorators (fault injection, per-operation
// timing, test backends) derive from it and override only what they change, so a virtual added
// to Backend reaches the inner backend instead of silently taking Backend's default.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "kernels/backend.h"

namespace runahead {

class ForwardingBackend : public Backend {
 public:
  explicit ForwardingBackend(Backend& inner) : inner_(inner) {}

  std::string name() const override { return inner_.name(); }
  DeviceKind device_kind() const override { return inner_.device_kind(); }
  int device_index() const override { return inner_.device_index(); }
  DType compute_dtype() const override { return inner_.compute_dtype(); }
  size_t free_memory_bytes() const override { return inner_.free_memory_bytes(); }
  Status check_attention_shape(int n_heads, int n_kv_heads, int head_dim) const override {
    return inner_.check_attention_shape(n_heads, n_kv_heads, head_dim);
  }

  Result<Buffer> allocate(size_t bytes) override { return inner_.allocate(bytes); }
  Result<Buffer> allocate_host(size_t bytes) override { return inner_.allocate_host(bytes); }
  Status copy_from_host(const void* src, Tensor dst) override {
    return inner_.copy_from_host(src, dst);
  }
  Status copy_to_host(Tensor src, void* dst) override { return inner_.copy_to_host(src, dst); }
  Status synchronize() override { return inner_.synchronize(); }
  Status copy_to_host_async(Tensor src, void* dst, CopyDone done) override {
    return inner_.copy_to_host_async(src, dst, std::move(done));
  }
  Status copy_from_host_async(const void* src, Tensor dst, CopyDone done) override {
    return inner_.copy_from_host_async(src, dst, std::move(done));
  }
  Result<int32_t> argmax(Tensor row) override { return inner_.argmax(row); }
  Status fill_uniform(Tensor dst, uint64_t seed, float scale, float offset) override {
    return inner_.fill_uniform(dst, seed, scale, offset);
  }

  void embed(Tensor table, const int32_t* tokens, Tensor out) override {
    inner_.embed(table, tokens, out);
  }
  void rms_norm(Tensor x, Tensor weight, float eps, Tensor out) override {
    inner_.rms_norm(x, weight, eps, out);
  }
  void layer_norm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) override {
    inner_.layer_norm(x, weight, bias, eps, out);
  }
  void add_rms_norm(Tensor residual, Tensor delta, Tensor weight, float eps, Tensor out) override {
    inner_.add_rms_norm(residual, delta, weight, eps, out);
  }
  void add_layer_norm(Tensor residual, Tensor delta, Tensor weight, Tensor bias, float eps,
                      Tensor out) override {
    inner_.add_layer_norm(residual, delta, weight, bias, eps, out);
  }
  void matmul(Tensor x, Tensor w, Tensor bias, Tensor out) override {
    inner_.matmul(x, w, bias, out);
  }
  void rope(const RopeArgs& args) override { inner_.rope(args); }
  void rope_rows(const RopeArgs& args, std::span<const int64_t> positions) override {
    inner_.rope_rows(args, positions);
  }
  void attention(const AttentionArgs& args) override { inner_.attention(args); }
  void decode_attention(std::span<const AttentionArgs> rows) override {
    inner_.decode_attention(rows);
  }
  void swiglu(Tensor gate_up, Tensor out) override { inner_.swiglu(gate_up, out); }
  void gelu(Tensor x, Tensor out) override { inner_.gelu(x, out); }
  void add(Tensor a, Tensor b, Tensor out) override { inner_.add(a, b, out); }
  void copy(Tensor src, Tensor dst) override { inner_.copy(src, dst); }

 protected:
  Backend& inner() const { return inner_; }

 private:
  Backend& inner_;
};

}  // namespace runahead
