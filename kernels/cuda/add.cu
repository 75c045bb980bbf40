#include "kernels/cuda/add.h"

#include <cuda_bf16.h>

#include "kernels/cuda/bf16_vector.cuh"

namespace runahead {
namespace {

constexpr int kThreads = 256;

// Grid: (rows, column chunks). Each thread reads its inputs before writing, so out may alias.
template <bool kVector>
__global__ void add_kernel(const __nv_bfloat16* a, int64_t a_stride, const __nv_bfloat16* b,
                           int64_t b_stride, __nv_bfloat16* out, int64_t out_stride, int64_t cols) {
  const int64_t row = blockIdx.x;
  const int64_t width = kVector ? 8 : 1;
  const int64_t c = (static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x) * width;
  if (c >= cols) return;
  const __nv_bfloat16* x = a + row * a_stride + c;
  const __nv_bfloat16* y = b + row * b_stride + c;
  __nv_bfloat16* o = out + row * out_stride + c;
  if constexpr (kVector) {
    Float8 u = load_bf16x8(x);
    const Float8 v = load_bf16x8(y);
#pragma unroll
    for (int i = 0; i < 8; ++i) u.v[i] += v.v[i];
    store_bf16x8(o, u);
  } else {
    *o = __float2bfloat16(__bfloat162float(*x) + __bfloat162float(*y));
  }
}

}  // namespace

cudaError_t launch_add(Tensor a, Tensor b, Tensor out, cudaStream_t stream) {
  if (out.rows == 0 || out.cols == 0) return cudaSuccess;
  const bool vector = rows_vectorizable(a) && rows_vectorizable(b) && rows_vectorizable(out);
  const int64_t width = vector ? 8 : 1;
  const int64_t per_block = kThreads * width;
  const dim3 grid(static_cast<unsigned>(out.rows),
                  static_cast<unsigned>((out.cols + per_block - 1) / per_block));
  if (vector) {
    add_kernel<true><<<grid, kThreads, 0, stream>>>(
        a.as<__nv_bfloat16>(), a.row_stride, b.as<__nv_bfloat16>(), b.row_stride,
        out.as<__nv_bfloat16>(), out.row_stride, out.cols);
  } else {
    add_kernel<false><<<grid, kThreads, 0, stream>>>(
        a.as<__nv_bfloat16>(), a.row_stride, b.as<__nv_bfloat16>(), b.row_stride,
        out.as<__nv_bfloat16>(), out.row_stride, out.cols);
  }
  return cudaGetLastError();
}

}  // namespace runahead
