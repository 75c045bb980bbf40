#include "kernels/cuda/rope.h"

#include <cuda_bf16.h>

#include "kernels/cuda/bf16_vector.cuh"

namespace runahead {
namespace {

// One block per row; each thread rotates pairs (head, i). The angle position * inv_freq[i] is
// rounded to fp32 before its sine and cosine, as Hugging Face and the CPU reference do.
__global__ void rope_kernel(__nv_bfloat16* x, int64_t stride, int n_heads, int head_dim, int half,
                            int64_t first_position, const float* inv_freq, bool interleaved) {
  const int64_t row = blockIdx.x;
  const auto position = static_cast<float>(first_position + row);
  __nv_bfloat16* r = x + row * stride;
  const int pairs = n_heads * half;
  for (int p = static_cast<int>(threadIdx.x); p < pairs; p += static_cast<int>(blockDim.x)) {
    const int h = p / half;
    const int i = p - h * half;
    const float angle = position * inv_freq[i];
    float sin_a;
    float cos_a;
    sincosf(angle, &sin_a, &cos_a);
    __nv_bfloat16* head = r + static_cast<int64_t>(h) * head_dim;
    const int first = interleaved ? 2 * i : i;
    const int second = interleaved ? 2 * i + 1 : i + half;
    const float x0 = __bfloat162float(head[first]);
    const float x1 = __bfloat162float(head[second]);
    head[first] = __float2bfloat16(x0 * cos_a - x1 * sin_a);
    head[second] = __float2bfloat16(x1 * cos_a + x0 * sin_a);
  }
}

// The same for the half-split layout with 8 consecutive pairs per thread (16-byte accesses).
__global__ void rope_half_x8_kernel(__nv_bfloat16* x, int64_t stride, int n_heads, int head_dim,
                                    int half, int64_t first_position, const float* inv_freq) {
  const int64_t row = blockIdx.x;
  const auto position = static_cast<float>(first_position + row);
  __nv_bfloat16* r = x + row * stride;
  const int groups = half / 8;
  for (int p = static_cast<int>(threadIdx.x); p < n_heads * groups;
       p += static_cast<int>(blockDim.x)) {
    const int h = p / groups;
    const int i0 = (p - h * groups) * 8;
    __nv_bfloat16* head = r + static_cast<int64_t>(h) * head_dim;
    Float8 a = load_bf16x8(head + i0);
    Float8 b = load_bf16x8(head + i0 + half);
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      float sin_a;
      float cos_a;
      sincosf(position * inv_freq[i0 + e], &sin_a, &cos_a);
      const float x0 = a.v[e];
      const float x1 = b.v[e];
      a.v[e] = x0 * cos_a - x1 * sin_a;
      b.v[e] = x1 * cos_a + x0 * sin_a;
    }
    store_bf16x8(head + i0, a);
    store_bf16x8(head + i0 + half, b);
  }
}

}  // namespace

cudaError_t launch_rope(const RopeArgs& a, cudaStream_t stream) {
  const int half = a.rotary_dim / 2;
  if (a.x.rows == 0 || half == 0) return cudaSuccess;
  if (a.style == RopeStyle::kHalf && half % 8 == 0 && a.head_dim % 8 == 0 &&
      rows_vectorizable(a.x)) {
    rope_half_x8_kernel<<<static_cast<unsigned>(a.x.rows), 128, 0, stream>>>(
        a.x.as<__nv_bfloat16>(), a.x.row_stride, a.n_heads, a.head_dim, half, a.first_position,
        a.inv_freq.as<float>());
    return cudaGetLastError();
  }
  rope_kernel<<<static_cast<unsigned>(a.x.rows), 128, 0, stream>>>(
      a.x.as<__nv_bfloat16>(), a.x.row_stride, a.n_heads, a.head_dim, half, a.first_position,
      a.inv_freq.as<float>(), a.style == RopeStyle::kInterleaved);
  return cudaGetLastError();
}

}  // namespace runahead
