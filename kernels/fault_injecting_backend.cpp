#include "kernels/fault_injecting_backend.h"

#include <atomic>
#include <string>
#include <utility>

#include "core/log.h"

namespace runahead {
namespace {

class FaultInjectingBackendImpl final : public FaultInjectingBackend {
 public:
  FaultInjectingBackendImpl(std::unique_ptr<Backend> inner, int64_t after_matmuls)
      : FaultInjectingBackend(*inner),
        inner_(std::move(inner)),
        after_matmuls_(after_matmuls),
        fault_(make_error(ErrorCode::kDevice,
                          inner_->name() + ": injected device fault after " +
                              std::to_string(after_matmuls) +
                              " matrix products (unspecified launch failure, sticky as a CUDA "
                              "error)")) {}

  void start_counting() override { counting_.store(true); }
  bool failed() const override { return failed_.load(); }

  Result<Buffer> allocate(size_t bytes) override {
    if (failed()) return fault_;
    return inner_->allocate(bytes);
  }
  Result<Buffer> allocate_host(size_t bytes) override {
    if (failed()) return fault_;
    return inner_->allocate_host(bytes);
  }
  Status copy_from_host(const void* src, Tensor dst) override {
    if (failed()) return fault_;
    return inner_->copy_from_host(src, dst);
  }
  Status copy_to_host(Tensor src, void* dst) override {
    if (failed()) return fault_;
    return inner_->copy_to_host(src, dst);
  }
  Status synchronize() override {
    if (failed()) return fault_;
    return inner_->synchronize();
  }

  // Issued copies report the fault through `done`, as a CUDA stream callback does once the
  // device failed, also when it failed while they were in flight.
  Status copy_to_host_async(Tensor src, void* dst, CopyDone done) override {
    if (failed()) {
      done(fault_);
      return Status::ok();
    }
    return inner_->copy_to_host_async(src, dst, checked(std::move(done)));
  }
  Status copy_from_host_async(const void* src, Tensor dst, CopyDone done) override {
    if (failed()) {
      done(fault_);
      return Status::ok();
    }
    return inner_->copy_from_host_async(src, dst, checked(std::move(done)));
  }

  Result<int32_t> argmax(Tensor row) override {
    if (failed()) return fault_;
    return inner_->argmax(row);
  }
  Status fill_uniform(Tensor dst, uint64_t seed, float scale, float offset) override {
    if (failed()) return fault_;
    return inner_->fill_uniform(dst, seed, scale, offset);
  }

  void embed(Tensor table, const int32_t* tokens, Tensor out) override {
    if (!failed()) inner_->embed(table, tokens, out);
  }
  void rms_norm(Tensor x, Tensor weight, float eps, Tensor out) override {
    if (!failed()) inner_->rms_norm(x, weight, eps, out);
  }
  void layer_norm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) override {
    if (!failed()) inner_->layer_norm(x, weight, bias, eps, out);
  }
  void add_rms_norm(Tensor residual, Tensor delta, Tensor weight, float eps, Tensor out) override {
    if (!failed()) inner_->add_rms_norm(residual, delta, weight, eps, out);
  }
  void add_layer_norm(Tensor residual, Tensor delta, Tensor weight, Tensor bias, float eps,
                      Tensor out) override {
    if (!failed()) inner_->add_layer_norm(residual, delta, weight, bias, eps, out);
  }
  void matmul(Tensor x, Tensor w, Tensor bias, Tensor out) override {
    if (failed()) return;
    if (counting_.load() && matmuls_.fetch_add(1) >= after_matmuls_) {
      failed_.store(true);
      logger("kernels")->warn("{}", fault_.message());
      return;
    }
    inner_->matmul(x, w, bias, out);
  }
  void rope(const RopeArgs& args) override {
    if (!failed()) inner_->rope(args);
  }
  void rope_rows(const RopeArgs& args, std::span<const int64_t> positions) override {
    if (!failed()) inner_->rope_rows(args, positions);
  }
  void attention(const AttentionArgs& args) override {
    if (!failed()) inner_->attention(args);
  }
  void decode_attention(std::span<const AttentionArgs> rows) override {
    if (!failed()) inner_->decode_attention(rows);
  }
  void swiglu(Tensor gate_up, Tensor out) override {
    if (!failed()) inner_->swiglu(gate_up, out);
  }
  void gelu(Tensor x, Tensor out) override {
    if (!failed()) inner_->gelu(x, out);
  }
  void add(Tensor a, Tensor b, Tensor out) override {
    if (!failed()) inner_->add(a, b, out);
  }
  void copy(Tensor src, Tensor dst) override {
    if (!failed()) inner_->copy(src, dst);
  }

 private:
  CopyDone checked(CopyDone done) const {
    return [this, done = std::move(done)](Status status) {
      done(status.is_ok() && failed() ? fault_ : std::move(status));
    };
  }

  std::unique_ptr<Backend> inner_;
  const int64_t after_matmuls_;
  const Status fault_;
  std::atomic<bool> counting_{false};
  std::atomic<int64_t> matmuls_{0};
  std::atomic<bool> failed_{false};
};

}  // namespace

std::unique_ptr<FaultInjectingBackend> FaultInjectingBackend::wrap(std::unique_ptr<Backend> inner,
                                                                   int64_t after_matmuls) {
  return std::make_unique<FaultInjectingBackendImpl>(std::move(inner), after_matmuls);
}

}  // namespace runahead
