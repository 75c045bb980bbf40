#include "kernels/cuda/attention_general.h"

#include <cuda_bf16.h>

#include <cmath>

namespace runahead {
namespace {

constexpr int kWarps = 4;
constexpr int kRowsPerWarp = 4;
constexpr int kRowsPerBlock = kWarps * kRowsPerWarp;
constexpr int kKeysPerTile = 32;

// Shared-memory row stride of a K/V tile, in bf16: an odd number of 4-byte words, so that the
// 32 lanes reading the same column of 32 rows hit 32 different banks.
__host__ __device__ constexpr int tile_stride(int head_dim) {
  return 2 * (((head_dim + 1) / 2) | 1);
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Block: kRowsPerBlock query rows of one head; each warp owns kRowsPerWarp of them. For every
// tile of 32 keys, lane j scores key j against the warp's rows, then every lane accumulates
// dimensions lane, lane + 32, ... of the weighted values. kDims = dimensions per lane.
template <int kDims>
__global__ void __launch_bounds__(kWarps * 32)
    attention_general_kernel(const __nv_bfloat16* q, int64_t q_stride, const __nv_bfloat16* k,
                             const __nv_bfloat16* v, int64_t k_stride, int64_t v_stride,
                             __nv_bfloat16* out, int64_t out_stride, int64_t n_q, int64_t q_begin,
                             int head_dim, int group, float scale_log2) {
  extern __shared__ float shared[];
  const int stride = tile_stride(head_dim);
  float* q_tile = shared;  // [kRowsPerBlock][head_dim] fp32
  auto* k_tile = reinterpret_cast<__nv_bfloat16*>(q_tile + kRowsPerBlock * head_dim);
  __nv_bfloat16* v_tile = k_tile + kKeysPerTile * stride;

  const int head = static_cast<int>(blockIdx.y);
  const int64_t kv_offset = static_cast<int64_t>(head / group) * head_dim;
  const int64_t q_offset = static_cast<int64_t>(head) * head_dim;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;

  for (int i = static_cast<int>(threadIdx.x); i < kRowsPerBlock * head_dim;
       i += static_cast<int>(blockDim.x)) {
    const int r = i / head_dim;
    const int d = i - r * head_dim;
    const int64_t row = row0 + r;
    q_tile[i] = row < n_q ? __bfloat162float(q[row * q_stride + q_offset + d]) : 0.0f;
  }

  float running_max[kRowsPerWarp];
  float lane_sum[kRowsPerWarp];
  float acc[kRowsPerWarp][kDims];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    running_max[r] = -INFINITY;
    lane_sum[r] = 0.0f;
#pragma unroll
    for (int t = 0; t < kDims; ++t) acc[r][t] = 0.0f;
  }

  const int64_t last_row = min(row0 + kRowsPerBlock, n_q) - 1;
  const int64_t keys = q_begin + last_row + 1;  // keys visible to the block's last row
  const int my_first_row = warp * kRowsPerWarp;

  for (int64_t key0 = 0; key0 < keys; key0 += kKeysPerTile) {
    __syncthreads();  // the previous tile is no longer read
    for (int i = static_cast<int>(threadIdx.x); i < kKeysPerTile * head_dim;
         i += static_cast<int>(blockDim.x)) {
      const int j = i / head_dim;
      const int d = i - j * head_dim;
      const int64_t key = key0 + j;
      const __nv_bfloat16 zero = __float2bfloat16(0.0f);
      k_tile[j * stride + d] = key < keys ? k[key * k_stride + kv_offset + d] : zero;
      v_tile[j * stride + d] = key < keys ? v[key * v_stride + kv_offset + d] : zero;
    }
    __syncthreads();

    // Scores of key (key0 + lane) against the warp's rows.
    float score[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) score[r] = 0.0f;
    const __nv_bfloat16* k_row = k_tile + lane * stride;
    for (int d = 0; d < head_dim; ++d) {
      const float kd = __bfloat162float(k_row[d]);
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r)
        score[r] += q_tile[(my_first_row + r) * head_dim + d] * kd;
    }
    const int64_t key = key0 + lane;
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int64_t position = q_begin + row0 + my_first_row + r;
      const bool visible = key <= position && key < keys;
      const float s = visible ? score[r] * scale_log2 : -INFINITY;
      const float new_max = fmaxf(running_max[r], warp_max(s));
      // new_max is finite: key 0 (first tile) is visible to every row.
      const float correction = exp2f(running_max[r] - new_max);
      running_max[r] = new_max;
      const float p = visible ? exp2f(s - new_max) : 0.0f;
      lane_sum[r] = lane_sum[r] * correction + p;
#pragma unroll
      for (int t = 0; t < kDims; ++t) acc[r][t] *= correction;
      score[r] = p;
    }
#pragma unroll 4
    for (int j = 0; j < kKeysPerTile; ++j) {
      float vd[kDims];
#pragma unroll
      for (int t = 0; t < kDims; ++t) {
        const int d = lane + 32 * t;
        vd[t] = d < head_dim ? __bfloat162float(v_tile[j * stride + d]) : 0.0f;
      }
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const float p = __shfl_sync(0xffffffffu, score[r], j);
#pragma unroll
        for (int t = 0; t < kDims; ++t) acc[r][t] += p * vd[t];
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const float total = warp_sum(lane_sum[r]);
    const int64_t row = row0 + my_first_row + r;
    if (row >= n_q) continue;
#pragma unroll
    for (int t = 0; t < kDims; ++t) {
      const int d = lane + 32 * t;
      if (d < head_dim) out[row * out_stride + q_offset + d] = __float2bfloat16(acc[r][t] / total);
    }
  }
}

template <int kDims>
cudaError_t launch(const AttentionArgs& a, cudaStream_t stream) {
  const size_t shared = static_cast<size_t>(kRowsPerBlock) * a.head_dim * sizeof(float) +
                        2 * static_cast<size_t>(kKeysPerTile) * tile_stride(a.head_dim) * 2;
  if (shared > 48 * 1024) {
    const cudaError_t error =
        cudaFuncSetAttribute(attention_general_kernel<kDims>,
                             cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared));
    if (error != cudaSuccess) return error;
  }
  const dim3 grid(static_cast<unsigned>((a.q.rows + kRowsPerBlock - 1) / kRowsPerBlock),
                  static_cast<unsigned>(a.n_heads));
  const float scale_log2 = a.scale * 1.4426950408889634f;
  attention_general_kernel<kDims><<<grid, kWarps * 32, shared, stream>>>(
      a.q.as<__nv_bfloat16>(), a.q.row_stride, a.k.as<__nv_bfloat16>(), a.v.as<__nv_bfloat16>(),
      a.k.row_stride, a.v.row_stride, a.out.as<__nv_bfloat16>(), a.out.row_stride, a.q.rows,
      a.q_begin, a.head_dim, a.n_heads / a.n_kv_heads, scale_log2);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_attention_general(const AttentionArgs& a, cudaStream_t stream) {
  if (a.q.rows == 0) return cudaSuccess;
  if (a.head_dim <= 0 || a.head_dim > kMaxGeneralHeadDim) {
    return cudaErrorInvalidValue;
  }
  if (a.head_dim <= 32) return launch<1>(a, stream);
  if (a.head_dim <= 64) return launch<2>(a, stream);
  if (a.head_dim <= 128) return launch<4>(a, stream);
  return launch<8>(a, stream);
}

}  // namespace runahead
