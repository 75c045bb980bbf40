#include "bench/ttft/op_timing_backend.h"

#include <utility>

namespace runahead {

OpTimingBackend::~OpTimingBackend() {
  reset();
}

template <typename Op>
void OpTimingBackend::timed(std::string op, Op&& run) {
  Span span{std::move(op), nullptr, nullptr};
  cudaEventCreate(&span.start);
  cudaEventCreate(&span.stop);
  cudaEventRecord(span.start, gpu_.stream());
  run();
  cudaEventRecord(span.stop, gpu_.stream());
  spans_.push_back(std::move(span));
}

std::map<std::string, double> OpTimingBackend::totals() {
  std::map<std::string, double> result;
  cudaStreamSynchronize(gpu_.stream());
  for (const Span& span : spans_) {
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, span.start, span.stop);
    result[span.op] += ms;
  }
  return result;
}

void OpTimingBackend::reset() {
  cudaStreamSynchronize(gpu_.stream());
  for (const Span& span : spans_) {
    cudaEventDestroy(span.start);
    cudaEventDestroy(span.stop);
  }
  spans_.clear();
}

void OpTimingBackend::embed(Tensor table, const int32_t* tokens, Tensor out) {
  timed("embed", [&] { gpu_.embed(table, tokens, out); });
}
void OpTimingBackend::rms_norm(Tensor x, Tensor weight, float eps, Tensor out) {
  timed("rms_norm", [&] { gpu_.rms_norm(x, weight, eps, out); });
}
void OpTimingBackend::layer_norm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
  timed("layer_norm", [&] { gpu_.layer_norm(x, weight, bias, eps, out); });
}
void OpTimingBackend::add_rms_norm(Tensor residual, Tensor delta, Tensor weight, float eps,
                                   Tensor out) {
  timed("add_rms_norm", [&] { gpu_.add_rms_norm(residual, delta, weight, eps, out); });
}
void OpTimingBackend::add_layer_norm(Tensor residual, Tensor delta, Tensor weight, Tensor bias,
                                     float eps, Tensor out) {
  timed("add_layer_norm", [&] { gpu_.add_layer_norm(residual, delta, weight, bias, eps, out); });
}
void OpTimingBackend::matmul(Tensor x, Tensor w, Tensor bias, Tensor out) {
  timed("matmul " + std::to_string(w.rows) + "x" + std::to_string(w.cols),
        [&] { gpu_.matmul(x, w, bias, out); });
}
void OpTimingBackend::rope(const RopeArgs& args) {
  timed("rope", [&] { gpu_.rope(args); });
}
void OpTimingBackend::attention(const AttentionArgs& args) {
  timed("attention", [&] { gpu_.attention(args); });
}
void OpTimingBackend::swiglu(Tensor gate_up, Tensor out) {
  timed("swiglu", [&] { gpu_.swiglu(gate_up, out); });
}
void OpTimingBackend::gelu(Tensor x, Tensor out) {
  timed("gelu", [&] { gpu_.gelu(x, out); });
}
void OpTimingBackend::add(Tensor a, Tensor b, Tensor out) {
  timed("add", [&] { gpu_.add(a, b, out); });
}
void OpTimingBackend::copy(Tensor src, Tensor dst) {
  timed("copy", [&] { gpu_.copy(src, dst); });
}

}  // namespace runahead
