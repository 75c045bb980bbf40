#include "kernels/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cassert>
#include <memory>
#include <string>
#include <utility>

#include "kernels/cuda/activation.h"
#include "kernels/cuda/add.h"
#include "kernels/cuda/argmax.h"
#include "kernels/cuda/attention_fa3.h"
#include "kernels/cuda/attention_general.h"
#include "kernels/cuda/attention_mma.h"
#include "kernels/cuda/attention_wgmma.h"
#include "kernels/cuda/copy.h"
#include "kernels/cuda/embed.h"
#include "kernels/cuda/matmul.h"
#include "kernels/cuda/norm.h"
#include "kernels/cuda/random_fill.h"
#include "kernels/cuda/rope.h"

namespace runahead {
namespace {

std::string cuda_error_text(cudaError_t error) {
  return std::string(cudaGetErrorName(error)) + " (" + cudaGetErrorString(error) + ")";
}

// A copy's completion, from CUDA's callback thread: owns the callback and says what failed.
struct CopyCompletion {
  Backend::CopyDone done;
  std::string what;
};

void CUDART_CB copy_completed(cudaStream_t /*stream*/, cudaError_t status, void* data) {
  std::unique_ptr<CopyCompletion> completion(static_cast<CopyCompletion*>(data));
  if (status == cudaSuccess) {
    completion->done(Status::ok());
  } else {
    completion->done(
        make_error(ErrorCode::kDevice, completion->what + " failed: " + cuda_error_text(status)));
  }
}

[[maybe_unused]] bool is_bf16(const Tensor& t) {
  return t.empty() || t.dtype == DType::kBF16;
}

}  // namespace

Result<std::unique_ptr<CudaBackend>> CudaBackend::create(int device) {
  int count = 0;
  cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    return make_error(ErrorCode::kDevice, "cuda:" + std::to_string(device) +
                                              ": no usable CUDA device: " + cuda_error_text(error));
  }
  if (device < 0 || device >= count) {
    return make_error(ErrorCode::kInvalidArgument, "cuda:" + std::to_string(device) +
                                                       ": no such GPU (this machine has " +
                                                       std::to_string(count) + ")");
  }
  cudaDeviceProp properties{};
  error = cudaSetDevice(device);
  if (error == cudaSuccess) error = cudaGetDeviceProperties(&properties, device);
  if (error != cudaSuccess) {
    return make_error(ErrorCode::kDevice, "cuda:" + std::to_string(device) +
                                              ": cannot open the GPU: " + cuda_error_text(error));
  }
  if (properties.major < 8) {
    return make_error(ErrorCode::kUnsupported,
                      "cuda:" + std::to_string(device) + ": " + properties.name +
                          " has compute capability " + std::to_string(properties.major) + "." +
                          std::to_string(properties.minor) + "; bf16 kernels need 8.0 or later");
  }
  std::unique_ptr<CudaBackend> backend(new CudaBackend(device, properties));
  cudaGetLastError();  // an earlier backend's non-sticky error is not this one's
  error = cudaStreamCreateWithFlags(&backend->stream_, cudaStreamNonBlocking);
  if (error != cudaSuccess) {
    return make_error(ErrorCode::kDevice,
                      backend->name_ + ": cannot create a stream: " + cuda_error_text(error));
  }
  for (int i = 0; i < kCopyStreams; ++i) {
    for (cudaStream_t* copy_stream :
         {&backend->to_host_streams_[i], &backend->from_host_streams_[i]}) {
      error = cudaStreamCreateWithFlags(copy_stream, cudaStreamNonBlocking);
      if (error != cudaSuccess) {
        return make_error(ErrorCode::kDevice, backend->name_ + ": cannot create a copy stream: " +
                                                  cuda_error_text(error));
      }
    }
  }
  auto matmul = CublasLtMatmul::create();
  if (!matmul) {
    return make_error(matmul.error().code, backend->name_ + ": " + matmul.error().message);
  }
  backend->matmul_ = std::move(matmul).value();
  error = cudaMalloc(reinterpret_cast<void**>(&backend->device_argmax_), sizeof(int32_t));
  if (error != cudaSuccess) {
    return make_error(ErrorCode::kResourceExhausted,
                      backend->name_ + ": cannot allocate 4 bytes: " + cuda_error_text(error));
  }
  return Result<std::unique_ptr<CudaBackend>>(std::move(backend));
}

CudaBackend::CudaBackend(int device, const cudaDeviceProp& properties)
    : device_(device), name_("cuda:" + std::to_string(device)), properties_(properties) {}

CudaBackend::~CudaBackend() {
  cudaSetDevice(device_);
  for (cudaStream_t each : {stream_, to_host_streams_[0], to_host_streams_[1],
                            from_host_streams_[0], from_host_streams_[1]}) {
    if (each != nullptr) cudaStreamSynchronize(each);
  }
  matmul_.reset();
  if (device_tokens_ != nullptr) cudaFree(device_tokens_);
  if (device_argmax_ != nullptr) cudaFree(device_argmax_);
  for (cudaStream_t each : {stream_, to_host_streams_[0], to_host_streams_[1],
                            from_host_streams_[0], from_host_streams_[1]}) {
    if (each != nullptr) cudaStreamDestroy(each);
  }
}

size_t CudaBackend::free_memory_bytes() const {
  size_t free_bytes = 0;
  size_t total_bytes = 0;
  cudaSetDevice(device_);
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) return 0;
  return free_bytes;
}

Status CudaBackend::check_attention_shape(int n_heads, int n_kv_heads, int head_dim) const {
  RUNAHEAD_RETURN_IF_ERROR(Backend::check_attention_shape(n_heads, n_kv_heads, head_dim));
  if (head_dim > kMaxGeneralHeadDim) {
    return make_error(ErrorCode::kUnsupported,
                      name_ + ": head_dim " + std::to_string(head_dim) +
                          " is not supported by the CUDA attention kernels (head_dim 1 to " +
                          std::to_string(kMaxGeneralHeadDim) + "; 64 and 128 on tensor cores)");
  }
  return Status::ok();
}

void CudaBackend::record_failure(ErrorCode code, const std::string& message) {
  std::lock_guard lock(failure_mutex_);
  if (!failure_) failure_ = make_error(code, name_ + ": " + message);
}

void CudaBackend::record(cudaError_t error, const char* op,
                         const std::function<std::string()>& detail) {
  if (error == cudaSuccess) return;
  // An API call's error is also left as the thread's last error, where the next launch's
  // cudaGetLastError() would report it again: consume it here (sticky errors stay regardless).
  cudaGetLastError();
  std::string what = op;
  if (detail) what += " " + detail();
  record_failure(ErrorCode::kDevice, what + " failed: " + cuda_error_text(error));
}

Status CudaBackend::take_failure() {
  std::lock_guard lock(failure_mutex_);
  if (!failure_) return Status::ok();
  // Sticky: a failed device stays failed for every later check.
  return *failure_;
}

Result<Buffer> CudaBackend::allocate(size_t bytes) {
  cudaSetDevice(device_);
  void* data = nullptr;
  // At least one byte so that an empty request still yields a distinct, freeable pointer.
  const cudaError_t error = cudaMalloc(&data, bytes == 0 ? 1 : bytes);
  if (error != cudaSuccess) {
    cudaGetLastError();  // an allocation failure is not sticky: clear it
    return make_error(ErrorCode::kResourceExhausted, name_ + ": cannot allocate " +
                                                         std::to_string(bytes) + " bytes (" +
                                                         std::to_string(free_memory_bytes() >> 20) +
                                                         " MiB free): " + cuda_error_text(error));
  }
  const int device = device_;
  return Buffer(data, bytes, [device](void* p) {
    cudaSetDevice(device);
    cudaFree(p);
  });
}

Result<Buffer> CudaBackend::allocate_host(size_t bytes) {
  cudaSetDevice(device_);
  void* data = nullptr;
  const cudaError_t error = cudaHostAlloc(&data, bytes == 0 ? 1 : bytes, cudaHostAllocPortable);
  if (error != cudaSuccess) {
    cudaGetLastError();  // not sticky, as for device allocations
    return make_error(ErrorCode::kResourceExhausted,
                      name_ + ": cannot allocate " + std::to_string(bytes) +
                          " bytes of page-locked host memory: " + cuda_error_text(error));
  }
  return Buffer(data, bytes, [](void* p) { cudaFreeHost(p); });
}

Status CudaBackend::copy_from_host(const void* src, Tensor dst) {
  RUNAHEAD_RETURN_IF_ERROR(take_failure());
  const size_t row_bytes = static_cast<size_t>(dst.cols) * dtype_size(dst.dtype);
  const size_t pitch = static_cast<size_t>(dst.row_stride) * dtype_size(dst.dtype);
  if (dst.rows == 0 || row_bytes == 0) return Status::ok();
  record(cudaMemcpy2DAsync(dst.data, pitch, src, row_bytes, row_bytes,
                           static_cast<size_t>(dst.rows), cudaMemcpyHostToDevice, stream_),
         "copy_from_host",
         [&] { return "of " + std::to_string(dst.rows) + "x" + std::to_string(dst.cols); });
  // From pageable memory the call returns once `src` is staged; from page-locked memory the
  // DMA reads `src` later, so wait for it: the caller may reuse `src` when this returns.
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, src) != cudaSuccess) {
    cudaGetLastError();  // older runtimes refuse unregistered pointers: pageable
  } else if (attributes.type == cudaMemoryTypeHost) {
    record(cudaStreamSynchronize(stream_), "copy_from_host (page-locked source)");
  }
  return take_failure();
}

Status CudaBackend::copy_to_host(Tensor src, void* dst) {
  const size_t row_bytes = static_cast<size_t>(src.cols) * dtype_size(src.dtype);
  const size_t pitch = static_cast<size_t>(src.row_stride) * dtype_size(src.dtype);
  if (src.rows > 0 && row_bytes > 0) {
    record(cudaMemcpy2DAsync(dst, row_bytes, src.data, pitch, row_bytes,
                             static_cast<size_t>(src.rows), cudaMemcpyDeviceToHost, stream_),
           "copy_to_host",
           [&] { return "of " + std::to_string(src.rows) + "x" + std::to_string(src.cols); });
  }
  return synchronize();
}

Status CudaBackend::enqueue_copy(cudaStream_t stream, void* dst, size_t dst_pitch, const void* src,
                                 size_t src_pitch, size_t row_bytes, size_t rows,
                                 cudaMemcpyKind kind, const char* what, CopyDone done) {
  const std::string description = name_ + ": " + what + " of " + std::to_string(rows) +
                                  " rows of " + std::to_string(row_bytes) + " bytes";
  // The calling thread (the I/O thread, say) may not have this device current.
  cudaError_t error = cudaSetDevice(device_);
  if (error == cudaSuccess && rows > 0 && row_bytes > 0) {
    error = cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, row_bytes, rows, kind, stream);
  }
  auto completion = std::make_unique<CopyCompletion>(CopyCompletion{std::move(done), description});
  if (error == cudaSuccess) {
    error = cudaStreamAddCallback(stream, copy_completed, completion.get(), 0);
  }
  if (error != cudaSuccess) {
    cudaGetLastError();  // an issue error is this copy's, not a later operation's
    return make_error(ErrorCode::kDevice, description + ": " + cuda_error_text(error));
  }
  completion.release();  // copy_completed owns it now
  return Status::ok();
}

Status CudaBackend::copy_to_host_async(Tensor src, void* dst, CopyDone done) {
  const size_t row_bytes = static_cast<size_t>(src.cols) * dtype_size(src.dtype);
  const size_t pitch = static_cast<size_t>(src.row_stride) * dtype_size(src.dtype);
  cudaError_t error = cudaSetDevice(device_);
  // The copy waits for the work enqueued so far (what writes src), and only for that.
  cudaStream_t copy_stream = to_host_streams_[next_copy_stream_++ % kCopyStreams];
  cudaEvent_t written = nullptr;
  if (error == cudaSuccess) error = cudaEventCreateWithFlags(&written, cudaEventDisableTiming);
  if (error == cudaSuccess) error = cudaEventRecord(written, stream_);
  if (error == cudaSuccess) error = cudaStreamWaitEvent(copy_stream, written, 0);
  // Released by the runtime once the event completed.
  if (written != nullptr) cudaEventDestroy(written);
  if (error != cudaSuccess) {
    cudaGetLastError();
    return make_error(ErrorCode::kDevice, name_ +
                                              ": ordering a copy to the host after the "
                                              "enqueued work: " +
                                              cuda_error_text(error));
  }
  return enqueue_copy(copy_stream, dst, row_bytes, src.data, pitch, row_bytes,
                      static_cast<size_t>(src.rows), cudaMemcpyDeviceToHost, "copy to the host",
                      std::move(done));
}

Status CudaBackend::copy_from_host_async(const void* src, Tensor dst, CopyDone done) {
  const size_t row_bytes = static_cast<size_t>(dst.cols) * dtype_size(dst.dtype);
  const size_t pitch = static_cast<size_t>(dst.row_stride) * dtype_size(dst.dtype);
  return enqueue_copy(from_host_streams_[next_copy_stream_++ % kCopyStreams], dst.data, pitch, src,
                      row_bytes, row_bytes, static_cast<size_t>(dst.rows), cudaMemcpyHostToDevice,
                      "copy from the host", std::move(done));
}

Result<int32_t> CudaBackend::argmax(Tensor row) {
  assert(row.rows == 1);
  record(launch_argmax(row, device_argmax_, stream_), "argmax",
         [&] { return "of " + std::to_string(row.cols) + " values"; });
  int32_t index = 0;
  record(cudaMemcpyAsync(&index, device_argmax_, sizeof index, cudaMemcpyDeviceToHost, stream_),
         "argmax (copy of the index)");
  RUNAHEAD_RETURN_IF_ERROR(synchronize());
  return index;
}

Status CudaBackend::synchronize() {
  record(cudaStreamSynchronize(stream_), "a kernel or copy before synchronize");
  return take_failure();
}

Status CudaBackend::ensure_token_capacity(int64_t count) {
  if (count <= device_tokens_capacity_) return Status::ok();
  if (device_tokens_ != nullptr) {
    // Earlier gathers may still read the old ids.
    record(cudaStreamSynchronize(stream_), "embed");
    cudaFree(device_tokens_);
    device_tokens_ = nullptr;
    device_tokens_capacity_ = 0;
  }
  const int64_t capacity = std::max<int64_t>(count, 4096);
  const cudaError_t error = cudaMalloc(reinterpret_cast<void**>(&device_tokens_),
                                       static_cast<size_t>(capacity) * sizeof(int32_t));
  if (error != cudaSuccess) {
    cudaGetLastError();
    return make_error(ErrorCode::kResourceExhausted, "embed: cannot allocate the ids of " +
                                                         std::to_string(count) +
                                                         " tokens: " + cuda_error_text(error));
  }
  device_tokens_capacity_ = capacity;
  return Status::ok();
}

void CudaBackend::embed(Tensor table, const int32_t* tokens, Tensor out) {
  assert(is_bf16(table) && is_bf16(out) && table.cols == out.cols);
  if (out.rows == 0) return;
  Status capacity = ensure_token_capacity(out.rows);
  if (!capacity) {
    record_failure(capacity.code(), capacity.message());
    return;
  }
  // Every use of the ids is ordered on the stream, so rewriting them here is safe.
  record(cudaMemcpyAsync(device_tokens_, tokens, static_cast<size_t>(out.rows) * sizeof(int32_t),
                         cudaMemcpyHostToDevice, stream_),
         "embed (copy of the token ids)");
  record(launch_embed(table, device_tokens_, out, stream_), "embed");
}

void CudaBackend::rms_norm(Tensor x, Tensor weight, float eps, Tensor out) {
  assert(is_bf16(x) && is_bf16(weight) && is_bf16(out) && x.cols == weight.cols);
  record(launch_rms_norm(x, weight, eps, out, stream_), "rms_norm");
}

void CudaBackend::layer_norm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
  assert(is_bf16(x) && is_bf16(weight) && is_bf16(bias) && is_bf16(out));
  record(launch_layer_norm(x, weight, bias, eps, out, stream_), "layer_norm");
}

void CudaBackend::add_rms_norm(Tensor residual, Tensor delta, Tensor weight, float eps,
                               Tensor out) {
  assert(is_bf16(residual) && is_bf16(delta) && is_bf16(weight) && is_bf16(out));
  assert(residual.cols == delta.cols && residual.cols == weight.cols);
  record(launch_add_rms_norm(residual, delta, weight, eps, out, stream_), "add_rms_norm");
}

void CudaBackend::add_layer_norm(Tensor residual, Tensor delta, Tensor weight, Tensor bias,
                                 float eps, Tensor out) {
  assert(is_bf16(residual) && is_bf16(delta) && is_bf16(weight) && is_bf16(bias) && is_bf16(out));
  assert(residual.cols == delta.cols && residual.cols == weight.cols);
  record(launch_add_layer_norm(residual, delta, weight, bias, eps, out, stream_), "add_layer_norm");
}

void CudaBackend::matmul(Tensor x, Tensor w, Tensor bias, Tensor out) {
  assert(is_bf16(x) && is_bf16(w) && is_bf16(bias) && is_bf16(out));
  assert(x.cols == w.cols && out.rows == x.rows && out.cols == w.rows);
  if (x.rows == 0) return;
  Status status = matmul_->run(x, w, bias, out, stream_);
  if (!status) record_failure(status.code(), status.message());
}

void CudaBackend::set_matmul_autotune(bool on) {
  matmul_->set_autotune(on);
}

void CudaBackend::rope(const RopeArgs& args) {
  assert(is_bf16(args.x) && args.inv_freq.dtype == DType::kF32);
  record(launch_rope(args, stream_), "rope");
}

void CudaBackend::attention(const AttentionArgs& args) {
  assert(is_bf16(args.q) && is_bf16(args.k) && is_bf16(args.v) && is_bf16(args.out));
  if (args.q.rows == 0) return;
  const size_t shared = properties_.sharedMemPerBlockOptin;
  const AttentionKernel choice = attention_kernel_;
  const bool any_tensor_core = choice != AttentionKernel::kGeneral;
  // kAuto prefers the warp-specialized TMA kernel (FlashAttention-3 structure) on Hopper;
  // kFa3 and kWgmma force one kernel where it applies.
  const bool fa3 = choice == AttentionKernel::kAuto || choice == AttentionKernel::kFa3;
  if (fa3 && attention_fa3_usable(properties_) && attention_fa3_supports(args)) {
    last_attention_kernel_ = AttentionKernel::kFa3;
    record(launch_attention_fa3(args, shared, stream_), "attention",
           [&] { return "(fa3, head_dim " + std::to_string(args.head_dim) + ")"; });
    return;
  }
  const bool wgmma = choice == AttentionKernel::kAuto || choice == AttentionKernel::kWgmma;
  if (wgmma && attention_wgmma_usable(properties_) && attention_wgmma_supports(args)) {
    last_attention_kernel_ = AttentionKernel::kWgmma;
    record(launch_attention_wgmma(args, shared, stream_), "attention",
           [&] { return "(wgmma, head_dim " + std::to_string(args.head_dim) + ")"; });
    return;
  }
  if (any_tensor_core && attention_mma_supports(args)) {
    const int warps =
        attention_warps_ != 0 ? attention_warps_ : attention_mma_default_warps(shared);
    last_attention_kernel_ = AttentionKernel::kMma;
    record(launch_attention_mma(args, shared, warps, stream_), "attention",
           [&] { return "(mma, head_dim " + std::to_string(args.head_dim) + ")"; });
    return;
  }
  if (args.head_dim > kMaxGeneralHeadDim) {
    record_failure(ErrorCode::kUnsupported, "attention: head_dim " + std::to_string(args.head_dim) +
                                                " exceeds the largest supported, " +
                                                std::to_string(kMaxGeneralHeadDim));
    return;
  }
  last_attention_kernel_ = AttentionKernel::kGeneral;
  record(launch_attention_general(args, stream_), "attention",
         [&] { return "(general, head_dim " + std::to_string(args.head_dim) + ")"; });
}

void CudaBackend::swiglu(Tensor gate_up, Tensor out) {
  assert(is_bf16(gate_up) && is_bf16(out) && gate_up.cols == 2 * out.cols);
  record(launch_swiglu(gate_up, out, stream_), "swiglu");
}

void CudaBackend::gelu(Tensor x, Tensor out) {
  assert(is_bf16(x) && is_bf16(out) && x.cols == out.cols);
  record(launch_gelu(x, out, stream_), "gelu");
}

void CudaBackend::add(Tensor a, Tensor b, Tensor out) {
  assert(is_bf16(a) && is_bf16(b) && is_bf16(out));
  record(launch_add(a, b, out, stream_), "add");
}

void CudaBackend::copy(Tensor src, Tensor dst) {
  assert(src.dtype == dst.dtype && src.rows == dst.rows && src.cols == dst.cols);
  if (src.rows == 0 || src.cols == 0) return;
  record(launch_copy(src, dst, stream_), "copy",
         [&] { return "of " + std::to_string(src.rows) + "x" + std::to_string(src.cols); });
}

Status CudaBackend::fill_uniform(Tensor dst, uint64_t seed, float scale, float offset) {
  if (dst.dtype != DType::kBF16 && dst.dtype != DType::kF32) {
    return make_error(
        ErrorCode::kUnsupported,
        name_ + ": fill_uniform of " + std::string(dtype_name(dst.dtype)) + " (bf16 or f32 only)");
  }
  record(launch_fill_uniform(dst, seed, scale, offset, stream_), "fill_uniform",
         [&] { return "of " + std::to_string(dst.rows) + "x" + std::to_string(dst.cols); });
  return take_failure();
}

Result<std::unique_ptr<Backend>> make_cuda_backend(int device) {
  auto backend = CudaBackend::create(device);
  if (!backend) return backend.error();
  return std::unique_ptr<Backend>(std::move(backend).value());
}

}  // namespace runahead
