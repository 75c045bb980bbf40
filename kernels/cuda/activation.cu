#include "kernels/cuda/activation.h"

#include <cuda_bf16.h>

#include "kernels/cuda/bf16_vector.cuh"

namespace runahead {
namespace {

__device__ __forceinline__ float silu_times(float gate, float up) {
  return gate / (1.0f + expf(-gate)) * up;
}

__device__ __forceinline__ float gelu_erf(float x) {
  return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

// Grid: (rows, column chunks). kVector: 8 columns per thread with 16-byte accesses.
template <bool kVector>
__global__ void swiglu_kernel(const __nv_bfloat16* gate_up, int64_t in_stride, __nv_bfloat16* out,
                              int64_t out_stride, int64_t cols) {
  const int64_t row = blockIdx.x;
  const __nv_bfloat16* gate = gate_up + row * in_stride;
  const __nv_bfloat16* up = gate + cols;
  __nv_bfloat16* o = out + row * out_stride;
  const int64_t width = kVector ? 8 : 1;
  const int64_t c = (static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x) * width;
  if (c >= cols) return;
  if constexpr (kVector) {
    const Float8 g = load_bf16x8(gate + c);
    const Float8 u = load_bf16x8(up + c);
    Float8 r;
#pragma unroll
    for (int i = 0; i < 8; ++i) r.v[i] = silu_times(g.v[i], u.v[i]);
    store_bf16x8(o + c, r);
  } else {
    o[c] = __float2bfloat16(silu_times(__bfloat162float(gate[c]), __bfloat162float(up[c])));
  }
}

template <bool kVector>
__global__ void gelu_kernel(const __nv_bfloat16* x, int64_t in_stride, __nv_bfloat16* out,
                            int64_t out_stride, int64_t cols) {
  const int64_t row = blockIdx.x;
  const __nv_bfloat16* in = x + row * in_stride;
  __nv_bfloat16* o = out + row * out_stride;
  const int64_t width = kVector ? 8 : 1;
  const int64_t c = (static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x) * width;
  if (c >= cols) return;
  if constexpr (kVector) {
    Float8 v = load_bf16x8(in + c);
#pragma unroll
    for (float& e : v.v) e = gelu_erf(e);
    store_bf16x8(o + c, v);
  } else {
    o[c] = __float2bfloat16(gelu_erf(__bfloat162float(in[c])));
  }
}

constexpr int kThreads = 256;

dim3 grid_for(int64_t rows, int64_t cols, int64_t width) {
  const int64_t per_block = kThreads * width;
  return dim3(static_cast<unsigned>(rows),
              static_cast<unsigned>((cols + per_block - 1) / per_block));
}

}  // namespace

cudaError_t launch_swiglu(Tensor gate_up, Tensor out, cudaStream_t stream) {
  if (out.rows == 0 || out.cols == 0) return cudaSuccess;
  if (rows_vectorizable(gate_up) && rows_vectorizable(out)) {
    swiglu_kernel<true><<<grid_for(out.rows, out.cols, 8), kThreads, 0, stream>>>(
        gate_up.as<__nv_bfloat16>(), gate_up.row_stride, out.as<__nv_bfloat16>(), out.row_stride,
        out.cols);
  } else {
    swiglu_kernel<false><<<grid_for(out.rows, out.cols, 1), kThreads, 0, stream>>>(
        gate_up.as<__nv_bfloat16>(), gate_up.row_stride, out.as<__nv_bfloat16>(), out.row_stride,
        out.cols);
  }
  return cudaGetLastError();
}

cudaError_t launch_gelu(Tensor x, Tensor out, cudaStream_t stream) {
  if (out.rows == 0 || out.cols == 0) return cudaSuccess;
  if (rows_vectorizable(x) && rows_vectorizable(out)) {
    gelu_kernel<true><<<grid_for(out.rows, out.cols, 8), kThreads, 0, stream>>>(
        x.as<__nv_bfloat16>(), x.row_stride, out.as<__nv_bfloat16>(), out.row_stride, out.cols);
  } else {
    gelu_kernel<false><<<grid_for(out.rows, out.cols, 1), kThreads, 0, stream>>>(
        x.as<__nv_bfloat16>(), x.row_stride, out.as<__nv_bfloat16>(), out.row_stride, out.cols);
  }
  return cudaGetLastError();
}

}  // namespace runahead
