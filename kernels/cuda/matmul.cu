#include "kernels/cuda/matmul.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace runahead {
namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;
// Timed runs per autotuning candidate, after one warm-up run.
constexpr int kTimedRuns = 3;

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

Error cuda_error(cudaError_t error, const std::string& what) {
  cudaGetLastError();  // an API call's error is this call's, not the next launch's
  return make_error(ErrorCode::kDevice,
                    what + ": " + cudaGetErrorName(error) + " (" + cudaGetErrorString(error) + ")");
}

// One product's descriptors and operands, as cublasLtMatmul takes them.
struct Operation {
  cublasLtHandle_t handle;
  cublasLtMatmulDesc_t desc;
  cublasLtMatrixLayout_t a, b, c;
  const void* w;
  const void* x;
  void* out;
  void* workspace;
  size_t workspace_bytes;
};

cublasStatus_t launch(const Operation& op, const cublasLtMatmulAlgo_t& algo, cudaStream_t stream) {
  const float one = 1.0f;
  const float zero = 0.0f;
  return cublasLtMatmul(op.handle, op.desc, &one, op.w, op.a, op.x, op.b, &zero, op.out, op.c,
                        op.out, op.c, &algo, op.workspace, op.workspace_bytes, stream);
}

// A named wrapper: nvcc's front end fails on std::vector of cuBLASLt's unnamed structs.
struct Candidate {
  cublasLtMatmulAlgo_t algo;
};

// Up to `count` (at most kMaxCandidates) of cuBLASLt's candidates for `op`, its best guess
// first; empty when none fits.
constexpr int kMaxCandidates = 16;
static_assert(CublasLtMatmul::kAutotuneCandidates <= kMaxCandidates);
Result<std::vector<Candidate>> heuristics(const Operation& op, int alignment, int count,
                                          const std::string& what) {
  cublasLtMatmulPreference_t preference = nullptr;
  cublasStatus_t s = cublasLtMatmulPreferenceCreate(&preference);
  const auto align_bytes = static_cast<uint32_t>(alignment);
  if (s == CUBLAS_STATUS_SUCCESS) {
    cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                         &op.workspace_bytes, sizeof op.workspace_bytes);
    for (const auto attribute :
         {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
          CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES}) {
      cublasLtMatmulPreferenceSetAttribute(preference, attribute, &align_bytes, sizeof align_bytes);
    }
  }
  cublasLtMatmulHeuristicResult_t results[kMaxCandidates] = {};
  int found = 0;
  if (s == CUBLAS_STATUS_SUCCESS) {
    s = cublasLtMatmulAlgoGetHeuristic(op.handle, op.desc, op.a, op.b, op.c, op.c, preference,
                                       std::clamp(count, 1, kMaxCandidates), results, &found);
  }
  if (preference != nullptr) cublasLtMatmulPreferenceDestroy(preference);
  if (s != CUBLAS_STATUS_SUCCESS) return cublas_error(s, what + " (algorithm search)");
  std::vector<Candidate> candidates;
  for (int i = 0; i < std::min(found, kMaxCandidates); ++i) {
    if (results[i].state == CUBLAS_STATUS_SUCCESS) candidates.push_back(Candidate{results[i].algo});
  }
  return candidates;
}

// A start and a stop event, destroyed with the pair.
struct TimingEvents {
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
  cudaError_t create() {
    cudaError_t error = cudaEventCreate(&start);
    if (error == cudaSuccess) error = cudaEventCreate(&stop);
    return error;
  }
  ~TimingEvents() {
    if (start != nullptr) cudaEventDestroy(start);
    if (stop != nullptr) cudaEventDestroy(stop);
  }
};

// Milliseconds per run of `algo`: the mean of kTimedRuns after one warm-up, waiting for `stream`.
// Infinity when cuBLASLt refuses to run it; an error when the stream or the events fail.
Result<float> time_algo(const Operation& op, const cublasLtMatmulAlgo_t& algo, TimingEvents& events,
                        cudaStream_t stream, const std::string& what) {
  constexpr float kRefused = std::numeric_limits<float>::infinity();
  if (launch(op, algo, stream) != CUBLAS_STATUS_SUCCESS) return kRefused;
  cudaError_t error = cudaEventRecord(events.start, stream);
  if (error != cudaSuccess) return cuda_error(error, "timing " + what);
  for (int i = 0; i < kTimedRuns; ++i) {
    if (launch(op, algo, stream) != CUBLAS_STATUS_SUCCESS) return kRefused;
  }
  error = cudaEventRecord(events.stop, stream);
  if (error == cudaSuccess) error = cudaEventSynchronize(events.stop);
  float ms = 0.0f;
  if (error == cudaSuccess) error = cudaEventElapsedTime(&ms, events.start, events.stop);
  if (error != cudaSuccess) return cuda_error(error, "timing " + what);
  return ms / kTimedRuns;
}

// The algorithm's configuration, for the log.
std::string describe(const cublasLtMatmulAlgo_t& algo) {
  int32_t id = 0;
  int32_t split_k = 1;
  uint32_t tile = 0;
  uint32_t stages = 0;
  uint32_t swizzle = 0;
  uint16_t cluster = 0;
  size_t written = 0;
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof id, &written);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile,
                                       &written);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages,
                                       sizeof stages, &written);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &split_k,
                                       sizeof split_k, &written);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &swizzle,
                                       sizeof swizzle, &written);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &cluster,
                                       sizeof cluster, &written);
  return "algo " + std::to_string(id) + " tile " + std::to_string(tile) + " stages " +
         std::to_string(stages) + " split-k " + std::to_string(split_k) + " swizzle " +
         std::to_string(swizzle) + " cluster " + std::to_string(cluster);
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

struct CublasLtMatmul::TunedAlgo {
  cublasLtMatmulAlgo_t algo{};
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
  tuned_.clear();
  if (workspace_ != nullptr) cudaFree(workspace_);
  if (handle_ != nullptr) cublasLtDestroy(static_cast<cublasLtHandle_t>(handle_));
}

// Row-major out[n, m] = x[n, k] @ w[m, k]^T is, in cuBLAS's column-major terms,
// out^T[m, n] = w^T^T[m, k] @ x^T[k, n]: A = w stored [k, m] (transposed), B = x stored [k, n].
Result<std::shared_ptr<CublasLtMatmul::Plan>> CublasLtMatmul::make_plan(const Shape& shape,
                                                                        Tensor x, Tensor w,
                                                                        Tensor bias, Tensor out,
                                                                        cudaStream_t stream) {
  const int64_t n = shape.n;
  const int64_t k = shape.k;
  const int64_t m = shape.m;
  const auto handle = static_cast<cublasLtHandle_t>(handle_);
  auto plan = std::make_shared<Plan>();
  cublasStatus_t s = cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  const cublasOperation_t transpose = CUBLAS_OP_T;
  const cublasOperation_t no_transpose = CUBLAS_OP_N;
  if (s == CUBLAS_STATUS_SUCCESS) {
    s = cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose,
                                       sizeof transpose);
  }
  if (s == CUBLAS_STATUS_SUCCESS) {
    s = cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &no_transpose,
                                       sizeof no_transpose);
  }
  if (s == CUBLAS_STATUS_SUCCESS && shape.has_bias) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    const cudaDataType_t bias_type = CUDA_R_16BF;
    const void* bias_pointer = bias.data;  // timing runs the product before run() sets it
    s = cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                       sizeof epilogue);
    if (s == CUBLAS_STATUS_SUCCESS) {
      s = cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                         &bias_type, sizeof bias_type);
    }
    if (s == CUBLAS_STATUS_SUCCESS) {
      s = cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                         &bias_pointer, sizeof bias_pointer);
    }
  }
  if (s == CUBLAS_STATUS_SUCCESS) {
    s = cublasLtMatrixLayoutCreate(&plan->a, CUDA_R_16BF, static_cast<uint64_t>(k),
                                   static_cast<uint64_t>(m), shape.w_stride);
  }
  if (s == CUBLAS_STATUS_SUCCESS) {
    s = cublasLtMatrixLayoutCreate(&plan->b, CUDA_R_16BF, static_cast<uint64_t>(k),
                                   static_cast<uint64_t>(n), shape.x_stride);
  }
  if (s == CUBLAS_STATUS_SUCCESS) {
    s = cublasLtMatrixLayoutCreate(&plan->c, CUDA_R_16BF, static_cast<uint64_t>(m),
                                   static_cast<uint64_t>(n), shape.out_stride);
  }
  const std::string what =
      "matmul x " + shape_text(x) + " by w " + shape_text(w) + " into " + shape_text(out);
  if (s != CUBLAS_STATUS_SUCCESS) return cublas_error(s, what + " (descriptors)");

  const Operation op{handle, plan->desc, plan->a,  plan->b,    plan->c,
                     w.data, x.data,     out.data, workspace_, workspace_bytes_};
  const auto use_heuristic = [&]() -> Status {
    RUNAHEAD_ASSIGN_OR_RETURN(auto first, heuristics(op, shape.alignment, 1, what));
    if (first.empty()) {
      return make_error(ErrorCode::kUnsupported, "cuBLASLt has no algorithm for " + what);
    }
    plan->algo = first.front().algo;
    return Status::ok();
  };
  if (!autotune_ || n * k * m < kAutotuneMinProduct) {
    RUNAHEAD_RETURN_IF_ERROR(use_heuristic());
    return plan;
  }

  Shape bucket = shape;
  bucket.n = static_cast<int64_t>(std::bit_ceil(static_cast<uint64_t>(n)));
  const std::string bucket_text = "n bucket <= " + std::to_string(bucket.n);
  if (const auto tuned = tuned_.find(bucket); tuned != tuned_.end()) {
    // Tuned at another n: the algorithm may not cover this one (split-k, tile limits).
    cublasLtMatmulHeuristicResult_t check{};
    const cublasStatus_t checked = cublasLtMatmulAlgoCheck(
        handle, plan->desc, plan->a, plan->b, plan->c, plan->c, &tuned->second->algo, &check);
    if (checked == CUBLAS_STATUS_SUCCESS && check.workspaceSize <= workspace_bytes_) {
      plan->algo = tuned->second->algo;
      ++counts_.reused;
      return plan;
    }
    ++counts_.check_failed;
    report_.push_back(what + " (" + bucket_text +
                      "): the bucket's tuned algorithm does not apply (" +
                      (checked == CUBLAS_STATUS_SUCCESS ? std::string("workspace too large")
                                                        : cublasLtGetStatusName(checked)) +
                      "); cuBLASLt's heuristic choice instead");
    RUNAHEAD_RETURN_IF_ERROR(use_heuristic());
    return plan;
  }

  // Timing waits for the stream, which a stream being captured into a graph cannot do.
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  const cudaError_t capture_error = cudaStreamIsCapturing(stream, &capture);
  if (capture_error != cudaSuccess) return cuda_error(capture_error, what + " (stream query)");
  if (capture != cudaStreamCaptureStatusNone) {
    RUNAHEAD_RETURN_IF_ERROR(use_heuristic());
    return plan;
  }

  // Autotuning synchronizes: once per bucket the host waits for the stream (the work enqueued
  // before, then each candidate's runs in turn). The candidates run on these operands and
  // overwrite `out`; run() then writes the real product with the fastest. The cost is a few
  // runs of a prefill-sized product per candidate, once per bucket and process.
  RUNAHEAD_ASSIGN_OR_RETURN(auto candidates,
                            heuristics(op, shape.alignment, kAutotuneCandidates, what));
  if (candidates.empty()) {
    return make_error(ErrorCode::kUnsupported, "cuBLASLt has no algorithm for " + what);
  }
  TimingEvents events;
  const cudaError_t event_error = events.create();
  if (event_error != cudaSuccess) return cuda_error(event_error, what + " (timing events)");
  std::vector<float> ms(candidates.size());
  size_t best = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    RUNAHEAD_ASSIGN_OR_RETURN(ms[i], time_algo(op, candidates[i].algo, events, stream, what));
    if (ms[i] < ms[best]) best = i;
  }
  plan->algo = candidates[best].algo;
  if (!std::isfinite(ms[best])) {
    // Every candidate refused: the first, whose error the real run reports; nothing is kept.
    report_.push_back(what + " (" + bucket_text + "): cuBLASLt refused every candidate");
    return plan;
  }
  tuned_[bucket] = std::make_shared<TunedAlgo>(TunedAlgo{plan->algo});
  ++counts_.tuned;

  std::string times;
  for (const float each : ms) {
    if (!times.empty()) times += ", ";
    times += std::isfinite(each) ? std::to_string(each) : std::string("refused");
  }
  report_.push_back(what + " (" + bucket_text + "): candidate " + std::to_string(best) + " of " +
                    std::to_string(candidates.size()) + " (" + describe(plan->algo) + ") at " +
                    std::to_string(ms[best]) + " ms, the heuristic's first at " +
                    std::to_string(ms.front()) + " ms; all (ms): " + times);
  return plan;
}

Status CublasLtMatmul::run(Tensor x, Tensor w, Tensor bias, Tensor out, cudaStream_t stream) {
  const bool has_bias = !bias.empty();
  const int alignment =
      std::min({alignment_of(x.data), alignment_of(w.data), alignment_of(out.data)});
  const Shape shape{.n = x.rows,
                    .k = x.cols,
                    .m = w.rows,
                    .x_stride = x.row_stride,
                    .w_stride = w.row_stride,
                    .out_stride = out.row_stride,
                    .has_bias = has_bias,
                    .alignment = alignment,
                    .bias_alignment = has_bias ? alignment_of(bias.data) : 256};
  const auto key = std::make_pair(shape, autotune_);
  auto found = plans_.find(key);
  if (found == plans_.end()) {
    RUNAHEAD_ASSIGN_OR_RETURN(auto plan, make_plan(shape, x, w, bias, out, stream));
    found = plans_.emplace(key, std::move(plan)).first;
  }
  const Plan& plan = *found->second;
  if (has_bias) {
    const void* bias_pointer = bias.data;
    cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_pointer,
                                   sizeof bias_pointer);
  }
  const Operation op{static_cast<cublasLtHandle_t>(handle_),
                     plan.desc,
                     plan.a,
                     plan.b,
                     plan.c,
                     w.data,
                     x.data,
                     out.data,
                     workspace_,
                     workspace_bytes_};
  const cublasStatus_t s = launch(op, plan.algo, stream);
  if (s != CUBLAS_STATUS_SUCCESS) {
    return cublas_error(s, "matmul x " + shape_text(x) + " by w " + shape_text(w));
  }
  return Status::ok();
}

}  // namespace runahead
