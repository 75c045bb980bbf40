// out = x @ w^T (+ bias) through cuBLASLt: bf16 operands, fp32 accumulation, bias epilogue.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "core/status.h"
#include "core/tensor.h"

namespace runahead {

class CublasLtMatmul {
 public:
  // Creates the handle and a workspace on the current device.
  [[nodiscard]] static Result<std::unique_ptr<CublasLtMatmul>> create();
  ~CublasLtMatmul();
  CublasLtMatmul(const CublasLtMatmul&) = delete;
  CublasLtMatmul& operator=(const CublasLtMatmul&) = delete;

  // x [n, k], w [m, k], bias [1, m] or empty, out [n, m]; rows may be strided. Enqueues on
  // `stream`; the algorithm for each shape is chosen once and remembered.
  [[nodiscard]] Status run(Tensor x, Tensor w, Tensor bias, Tensor out, cudaStream_t stream);

 private:
  struct Plan;
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, int, int>;
  CublasLtMatmul() = default;

  void* handle_ = nullptr;  // cublasLtHandle_t
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::map<Key, std::shared_ptr<Plan>> plans_;
};

}  // namespace runahead
