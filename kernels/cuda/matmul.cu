#include "kernels/cuda/matmul.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

namespace runahead {
namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;

std::string shape_text(const Tensor& t) {
  std::string text = "[";
  text += std::to_string(t.rows);
  text += ", ";
  text += std::to_string(t.cols);
  text += "] stride ";
  text += std::to_string(t.row_stride);
  return text;
}

// The largest power of two (up to 256) dividing the address: cuBLASLt needs to know it.
int alignment_of(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  int alignment = 256;
  while (alignment > 2 && address % static_cast<uintptr_t>(alignment) != 0) alignment /= 2;
  return alignment;
}

Error cublas_error(cublasStatus_t status, const std::string& what) {
  return make_error(ErrorCode::kDevice, "cuBLASLt " + what + ": " + cublasLtGetStatusName(status) +
                                            " (" + cublasLtGetStatusString(status) + ")");
}

}  // namespace

struct CublasLtMatmul::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    if (desc != nullptr) cublasLtMatmulDescDestroy(desc);
    if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
    if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
    if (c != nullptr) cublasLtMatrixLayoutDestroy(c);
  }
};

Result<std::unique_ptr<CublasLtMatmul>> CublasLtMatmul::create() {
  std::unique_ptr<CublasLtMatmul> matmul(new CublasLtMatmul());
  cublasLtHandle_t handle = nullptr;
  const cublasStatus_t status = cublasLtCreate(&handle);
  if (status != CUBLAS_STATUS_SUCCESS) return cublas_error(status, "handle creation");
  matmul->handle_ = handle;
  const cudaError_t error = cudaMalloc(&matmul->workspace_, kWorkspaceBytes);
  if (error != cudaSuccess) {
    cudaGetLastError();
    return make_error(
        ErrorCode::kResourceExhausted,
        std::string("cannot allocate the cuBLASLt workspace: ") + cudaGetErrorString(error));
  }
  matmul->workspace_bytes_ = kWorkspaceBytes;
  return Result<std::unique_ptr<CublasLtMatmul>>(std::move(matmul));
}

CublasLtMatmul::~CublasLtMatmul() {
  plans_.clear();
  if (workspace_ != nullptr) cudaFree(workspace_);
  if (handle_ != nullptr) cublasLtDestroy(static_cast<cublasLtHandle_t>(handle_));
}

// Row-major out[n, m] = x[n, k] @ w[m, k]^T is, in cuBLAS's column-major terms,
// out^T[m, n] = w^T^T[m, k] @ x^T[k, n]: A = w stored [k, m] (transposed), B = x stored [k, n].
Status CublasLtMatmul::run(Tensor x, Tensor w, Tensor bias, Tensor out, cudaStream_t stream) {
  const int64_t n = x.rows;
  const int64_t k = x.cols;
  const int64_t m = w.rows;
  const bool has_bias = !bias.empty();
  const int alignment =
      std::min({alignment_of(x.data), alignment_of(w.data), alignment_of(out.data)});
  const int bias_alignment = has_bias ? alignment_of(bias.data) : 256;
  const Key key{
      n, k, m, x.row_stride, w.row_stride, out.row_stride, has_bias, alignment, bias_alignment};
  auto& plan = plans_[key];
  const auto handle = static_cast<cublasLtHandle_t>(handle_);
  if (!plan) {
    auto fresh = std::make_shared<Plan>();
    cublasStatus_t s = cublasLtMatmulDescCreate(&fresh->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    const cublasOperation_t transpose = CUBLAS_OP_T;
    const cublasOperation_t no_transpose = CUBLAS_OP_N;
    if (s == CUBLAS_STATUS_SUCCESS) {
      s = cublasLtMatmulDescSetAttribute(fresh->desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose,
                                         sizeof transpose);
    }
    if (s == CUBLAS_STATUS_SUCCESS) {
      s = cublasLtMatmulDescSetAttribute(fresh->desc, CUBLASLT_MATMUL_DESC_TRANSB, &no_transpose,
                                         sizeof no_transpose);
    }
    if (s == CUBLAS_STATUS_SUCCESS && has_bias) {
      const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
      const cudaDataType_t bias_type = CUDA_R_16BF;
      s = cublasLtMatmulDescSetAttribute(fresh->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                         sizeof epilogue);
      if (s == CUBLAS_STATUS_SUCCESS) {
        s = cublasLtMatmulDescSetAttribute(fresh->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                           &bias_type, sizeof bias_type);
      }
    }
    if (s == CUBLAS_STATUS_SUCCESS) {
      s = cublasLtMatrixLayoutCreate(&fresh->a, CUDA_R_16BF, static_cast<uint64_t>(k),
                                     static_cast<uint64_t>(m), w.row_stride);
    }
    if (s == CUBLAS_STATUS_SUCCESS) {
      s = cublasLtMatrixLayoutCreate(&fresh->b, CUDA_R_16BF, static_cast<uint64_t>(k),
                                     static_cast<uint64_t>(n), x.row_stride);
    }
    if (s == CUBLAS_STATUS_SUCCESS) {
      s = cublasLtMatrixLayoutCreate(&fresh->c, CUDA_R_16BF, static_cast<uint64_t>(m),
                                     static_cast<uint64_t>(n), out.row_stride);
    }
    const std::string what =
        "matmul x " + shape_text(x) + " by w " + shape_text(w) + " into " + shape_text(out);
    if (s != CUBLAS_STATUS_SUCCESS) {
      plans_.erase(key);
      return cublas_error(s, what + " (descriptors)");
    }
    cublasLtMatmulPreference_t preference = nullptr;
    s = cublasLtMatmulPreferenceCreate(&preference);
    const auto align_bytes = static_cast<uint32_t>(alignment);
    if (s == CUBLAS_STATUS_SUCCESS) {
      cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                           &workspace_bytes_, sizeof workspace_bytes_);
      cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                           &align_bytes, sizeof align_bytes);
      cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                           &align_bytes, sizeof align_bytes);
      cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                           &align_bytes, sizeof align_bytes);
      cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                           &align_bytes, sizeof align_bytes);
    }
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    if (s == CUBLAS_STATUS_SUCCESS) {
      s = cublasLtMatmulAlgoGetHeuristic(handle, fresh->desc, fresh->a, fresh->b, fresh->c,
                                         fresh->c, preference, 1, &result, &found);
    }
    if (preference != nullptr) cublasLtMatmulPreferenceDestroy(preference);
    if (s != CUBLAS_STATUS_SUCCESS || found == 0) {
      plans_.erase(key);
      if (s != CUBLAS_STATUS_SUCCESS) return cublas_error(s, what + " (algorithm search)");
      return make_error(ErrorCode::kUnsupported, "cuBLASLt has no algorithm for " + what);
    }
    fresh->algo = result.algo;
    plan = std::move(fresh);
  }
  if (has_bias) {
    const void* bias_pointer = bias.data;
    cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_pointer,
                                   sizeof bias_pointer);
  }
  const float one = 1.0f;
  const float zero = 0.0f;
  const cublasStatus_t s =
      cublasLtMatmul(handle, plan->desc, &one, w.data, plan->a, x.data, plan->b, &zero, out.data,
                     plan->c, out.data, plan->c, &plan->algo, workspace_, workspace_bytes_, stream);
  if (s != CUBLAS_STATUS_SUCCESS) {
    return cublas_error(s, "matmul x " + shape_text(x) + " by w " + shape_text(w));
  }
  return Status::ok();
}

}  // namespace runahead
