// A Backend that forwards every call to a CudaBackend and brackets each operation with CUDA
// events, so one prefill yields the GPU time spent in each kind of operation.
#pragma once

#include <cuda_runtime_api.h>

#include <map>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/forwarding_backend.h"

namespace runahead {

class OpTimingBackend final : public ForwardingBackend {
 public:
  explicit OpTimingBackend(CudaBackend& gpu) : ForwardingBackend(gpu), gpu_(gpu) {}
  ~OpTimingBackend() override;

  // Milliseconds per operation name over everything run since the last reset(); synchronizes.
  std::map<std::string, double> totals();
  void reset();

  void embed(Tensor table, const int32_t* tokens, Tensor out) override;
  void rms_norm(Tensor x, Tensor weight, float eps, Tensor out) override;
  void layer_norm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) override;
  void add_rms_norm(Tensor residual, Tensor delta, Tensor weight, float eps, Tensor out) override;
  void add_layer_norm(Tensor residual, Tensor delta, Tensor weight, Tensor bias, float eps,
                      Tensor out) override;
  void matmul(Tensor x, Tensor w, Tensor bias, Tensor out) override;
  void rope(const RopeArgs& args) override;
  void attention(const AttentionArgs& args) override;
  void swiglu(Tensor gate_up, Tensor out) override;
  void gelu(Tensor x, Tensor out) override;
  void add(Tensor a, Tensor b, Tensor out) override;
  void copy(Tensor src, Tensor dst) override;

 private:
  struct Span {
    std::string op;
    cudaEvent_t start;
    cudaEvent_t stop;
  };
  template <typename Op>
  void timed(std::string op, Op&& run);

  CudaBackend& gpu_;
  std::vector<Span> spans_;
};

}  // namespace runahead
