#include "kernels/cuda/argmax.h"

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

namespace runahead {
namespace {

constexpr int kThreads = 1024;

struct Candidate {
  float value;
  int32_t index;
};

// The larger value, or the smaller index of equal values: the order-independent form of
// "first largest", so any reduction tree gives the sequential answer.
__device__ __forceinline__ Candidate better(Candidate a, Candidate b) {
  return (b.value > a.value || (b.value == a.value && b.index < a.index)) ? b : a;
}

__device__ __forceinline__ float widen(__nv_bfloat16 x) {
  return __bfloat162float(x);
}
__device__ __forceinline__ float widen(float x) {
  return x;
}

template <typename T>
__global__ void argmax_kernel(const T* row, int64_t cols, int32_t* device_index) {
  __shared__ Candidate per_warp[kThreads / 32];
  // A thread without elements holds a candidate that loses to every real one.
  Candidate best{-INFINITY, INT32_MAX};
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    best = better(best, Candidate{widen(row[c]), static_cast<int32_t>(c)});
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    const Candidate other{__shfl_xor_sync(0xffffffffu, best.value, offset),
                          __shfl_xor_sync(0xffffffffu, best.index, offset)};
    best = better(best, other);
  }
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  if (lane == 0) per_warp[warp] = best;
  __syncthreads();
  if (warp != 0) return;
  const int warps = static_cast<int>(blockDim.x) / 32;
  best = lane < warps ? per_warp[lane] : Candidate{-INFINITY, INT32_MAX};
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    const Candidate other{__shfl_xor_sync(0xffffffffu, best.value, offset),
                          __shfl_xor_sync(0xffffffffu, best.index, offset)};
    best = better(best, other);
  }
  // Every value -inf (or none): index 0, as the sequential scan.
  if (lane == 0) *device_index = best.index == INT32_MAX ? 0 : best.index;
}

}  // namespace

cudaError_t launch_argmax(Tensor row, int32_t* device_index, cudaStream_t stream) {
  if (row.dtype == DType::kBF16) {
    argmax_kernel<<<1, kThreads, 0, stream>>>(row.as<__nv_bfloat16>(), row.cols, device_index);
  } else if (row.dtype == DType::kF32) {
    argmax_kernel<<<1, kThreads, 0, stream>>>(row.as<float>(), row.cols, device_index);
  } else {
    return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace runahead
