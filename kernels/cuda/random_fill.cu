#include "kernels/cuda/random_fill.h"

#include <cuda_bf16.h>

#include <algorithm>

#include "kernels/random_uniform.h"

namespace runahead {
namespace {

// Element i (row-major within the view) takes value i of the stream, whatever the launch shape.
template <typename T>
__global__ void fill_uniform_kernel(T* data, int64_t stride, int64_t rows, int64_t cols,
                                    uint64_t seed, float scale, float offset) {
  const int64_t total = rows * cols;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += step) {
    const int64_t r = i / cols;
    const int64_t c = i - r * cols;
    const float value = uniform_value(seed, static_cast<uint64_t>(i), scale, offset);
    if constexpr (sizeof(T) == 2) {
      data[r * stride + c] = __float2bfloat16_rn(value);
    } else {
      data[r * stride + c] = value;
    }
  }
}

}  // namespace

cudaError_t launch_fill_uniform(Tensor dst, uint64_t seed, float scale, float offset,
                                cudaStream_t stream) {
  if (dst.elements() == 0) return cudaSuccess;
  const int64_t threads = 256;
  const int64_t blocks = std::min<int64_t>((dst.elements() + threads - 1) / threads, 65536);
  if (dst.dtype == DType::kBF16) {
    fill_uniform_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
        dst.as<__nv_bfloat16>(), dst.row_stride, dst.rows, dst.cols, seed, scale, offset);
  } else if (dst.dtype == DType::kF32) {
    fill_uniform_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
        dst.as<float>(), dst.row_stride, dst.rows, dst.cols, seed, scale, offset);
  } else {
    return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace runahead
