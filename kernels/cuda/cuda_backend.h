// The CUDA backend: bf16 storage, fp32 accumulation, all work enqueued on one compute stream.
//
// Operations are asynchronous; the first CUDA failure (a launch, a copy or a kernel fault) is
// kept and returned, naming the operation, from synchronize() and copy_to_host().
#pragma once

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/status.h"
#include "kernels/backend.h"

namespace runahead {

class CublasLtMatmul;

// Which prefill attention kernel runs. kAuto: on compute capability 9.0 for head_dim 64 and
// 128 the warp-specialized TMA kernel (FlashAttention-3 structure), else the wgmma one; else the
// mma.sync kernel for those head sizes; else the general one.
enum class AttentionKernel : uint8_t {
  kAuto,
  kFa3,      // Hopper: TMA producer warpgroup, two ping-pong wgmma consumer warpgroups
  kWgmma,    // Hopper wgmma, one warpgroup structure (compute capability 9.0)
  kMma,      // mma.sync (sm_80 and later)
  kGeneral,  // any head_dim up to 256, no tensor cores
};

class CudaBackend final : public Backend {
 public:
  // Selects `device`, creates the stream and the cuBLASLt handle; errors name the device.
  [[nodiscard]] static Result<std::unique_ptr<CudaBackend>> create(int device);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return name_; }
  DeviceKind device_kind() const override { return DeviceKind::kCuda; }
  int device_index() const override { return device_; }
  DType compute_dtype() const override { return DType::kBF16; }
  size_t free_memory_bytes() const override;
  // Every head_dim up to kMaxGeneralHeadDim (256); 64 and 128 on tensor cores.
  Status check_attention_shape(int n_heads, int n_kv_heads, int head_dim) const override;

  Result<Buffer> allocate(size_t bytes) override;
  // Page-locked (cudaHostAlloc, portable to every device): copies run at full PCIe speed.
  Result<Buffer> allocate_host(size_t bytes) override;
  Status copy_from_host(const void* src, Tensor dst) override;
  Status copy_to_host(Tensor src, void* dst) override;
  Status synchronize() override;
  // On copy streams of their own, two per direction (both copy engines work at once, and one
  // stream copies while the other waits for its completion callback, which holds its stream
  // until it returned); completion is reported from CUDA's callback thread.
  Status copy_to_host_async(Tensor src, void* dst, CopyDone done) override;
  Status copy_from_host_async(const void* src, Tensor dst, CopyDone done) override;
  Result<int32_t> argmax(Tensor row) override;
  Status fill_uniform(Tensor dst, uint64_t seed, float scale, float offset) override;

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

  // Selects the attention kernel (tests and benchmarks compare them); a kernel that does not
  // take the arguments (head_dim, alignment, device) falls back to the next one that does.
  void set_attention_kernel(AttentionKernel kernel) { attention_kernel_ = kernel; }
  // Warps per block of the mma.sync attention (4 or 8; 0 picks from the device).
  void set_attention_warps(int warps) { attention_warps_ = warps; }
  // The kernel the last attention() call launched (kAuto before any), so a test that forces a
  // kernel sees whether it ran or fell back.
  AttentionKernel last_attention_kernel() const { return last_attention_kernel_; }
  // Times cuBLASLt's candidate algorithms for prefill-sized matrix products, or takes its first
  // heuristic choice (the default; CublasLtMatmul::set_autotune).
  void set_matmul_autotune(bool on);

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  const cudaDeviceProp& properties() const { return properties_; }

 private:
  CudaBackend(int device, const cudaDeviceProp& properties);
  // Records `error` of `op` unless an earlier failure is already recorded; `detail` (shapes,
  // kernel variant) is appended to the message and only formatted when there is an error.
  void record(cudaError_t error, const char* op, const std::function<std::string()>& detail = {});
  void record_failure(ErrorCode code, const std::string& message);
  Status take_failure();
  Status ensure_token_capacity(int64_t count);
  // Issues one 2-D copy on `stream` and its completion callback.
  Status enqueue_copy(cudaStream_t stream, void* dst, size_t dst_pitch, const void* src,
                      size_t src_pitch, size_t row_bytes, size_t rows, cudaMemcpyKind kind,
                      const char* what, CopyDone done);

  int device_ = 0;
  std::string name_;
  cudaDeviceProp properties_{};
  cudaStream_t stream_ = nullptr;
  static constexpr int kCopyStreams = 2;  // per direction
  cudaStream_t to_host_streams_[kCopyStreams] = {};
  cudaStream_t from_host_streams_[kCopyStreams] = {};
  std::atomic<unsigned> next_copy_stream_{0};
  std::unique_ptr<CublasLtMatmul> matmul_;
  int32_t* device_tokens_ = nullptr;
  int32_t* device_argmax_ = nullptr;  // argmax()'s result, one int32
  int64_t device_tokens_capacity_ = 0;
  AttentionKernel attention_kernel_ = AttentionKernel::kAuto;
  int attention_warps_ = 0;
  AttentionKernel last_attention_kernel_ = AttentionKernel::kAuto;
  std::mutex failure_mutex_;
  std::optional<Error> failure_;
};

// The backend for GPU `device`, or an error naming the device and the CUDA error.
[[nodiscard]] Result<std::unique_ptr<Backend>> make_cuda_backend(int device);

}  // namespace runahead
