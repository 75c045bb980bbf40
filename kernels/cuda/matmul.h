// out = x @ w^T (+ bias) through cuBLASLt: bf16 operands, fp32 accumulation, bias epilogue.
#pragma once

#include <cuda_runtime_api.h>

#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"

namespace runahead {

class CublasLtMatmul {
 public:
  // Products n * k * m at or above this are autotuned: at 4096 x 4096 weights, slices of 128
  // rows and more (prefill); decode-sized products keep cuBLASLt's first heuristic choice.
  static constexpr int64_t kAutotuneMinProduct = int64_t{1} << 31;
  // How many of cuBLASLt's heuristic candidates are timed.
  static constexpr int kAutotuneCandidates = 8;

  // What autotuning did so far (tests read it).
  struct AutotuneCounts {
    int64_t tuned = 0;         // buckets whose candidates were timed
    int64_t reused = 0;        // new exact shapes that took their bucket's tuned algorithm
    int64_t check_failed = 0;  // ... whose bucket's algorithm did not fit: heuristic instead
  };

  // Creates the handle and a workspace on the current device.
  [[nodiscard]] static Result<std::unique_ptr<CublasLtMatmul>> create();
  ~CublasLtMatmul();
  CublasLtMatmul(const CublasLtMatmul&) = delete;
  CublasLtMatmul& operator=(const CublasLtMatmul&) = delete;

  // x [n, k], w [m, k], bias [1, m] or empty, out [n, m]; rows may be strided. Enqueues on
  // `stream`; the algorithm for each shape is chosen once and remembered. With autotuning on,
  // the first product of a bucket (below) times the candidates on these operands, writing
  // `out` several times and waiting for `stream`, then runs the product with the fastest.
  [[nodiscard]] Status run(Tensor x, Tensor w, Tensor bias, Tensor out, cudaStream_t stream);

  // On (the default): products of at least kAutotuneMinProduct time up to kAutotuneCandidates
  // of cuBLASLt's candidates and keep the fastest for every n in the same power-of-two bucket
  // (same k, m, strides, bias and alignment). Off: cuBLASLt's first heuristic choice. The
  // plans of both modes are kept, so switching back and forth re-tunes nothing.
  void set_autotune(bool on) { autotune_ = on; }
  bool autotune() const { return autotune_; }
  const AutotuneCounts& autotune_counts() const { return counts_; }
  // One line per tuned bucket (the candidates' times and the chosen configuration) and per
  // bucket algorithm that did not apply to a new shape, for the caller to print (spdlog's
  // compile-time format checks do not build under nvcc in C++20).
  const std::vector<std::string>& autotune_report() const { return report_; }

 private:
  struct Plan;
  struct TunedAlgo;
  struct Shape {
    int64_t n, k, m, x_stride, w_stride, out_stride;
    bool has_bias;
    int alignment, bias_alignment;
    auto operator<=>(const Shape&) const = default;
  };
  CublasLtMatmul() = default;
  // Descriptors for `shape` and its algorithm: tuned, reused from the bucket, or heuristic.
  [[nodiscard]] Result<std::shared_ptr<Plan>> make_plan(const Shape& shape, Tensor x, Tensor w,
                                                        Tensor bias, Tensor out,
                                                        cudaStream_t stream);

  void* handle_ = nullptr;  // cublasLtHandle_t
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  // Off by default: on H200 it gained nothing measurable at power-of-two lengths and lost up
  // to 3% at lengths whose bucket was tuned at another n (bench/RESULTS.md, 2026-11-26).
  bool autotune_ = false;
  AutotuneCounts counts_;
  std::vector<std::string> report_;
  std::map<std::pair<Shape, bool>, std::shared_ptr<Plan>> plans_;  // by shape and autotune
  std::map<Shape, std::shared_ptr<TunedAlgo>> tuned_;              // by bucket (n rounded up)
};

}  // namespace runahead
