#include "kernels/cuda/attention_mma.h"
#include "kernels/cuda/device_primitives.cuh"

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

namespace runahead {
namespace {

using namespace cuda_primitives;

constexpr int kBlockN = 64;  // keys per tile; each warp owns 16 query rows of the block

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

// c += a (16x16, row) * b (16x8, col): bf16 operands, fp32 accumulators.
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Element offset of 16-byte chunk `chunk` of row `row` in a [rows, kHeadDim] shared tile. The
// chunk index is XORed with the row so that ldmatrix's 8 rows of one column hit 8 bank groups.
template <int kHeadDim>
__device__ __forceinline__ int swizzled(int row, int chunk) {
  return row * kHeadDim + ((chunk ^ (row & 7)) << 3);
}

// Loads rows [first, first + kRows) of a [*, kHeadDim] head view into a swizzled shared tile;
// rows at or past `limit` are zero-filled.
template <int kHeadDim, int kRows, int kThreads>
__device__ __forceinline__ void load_tile(__nv_bfloat16* tile, const __nv_bfloat16* source,
                                          int64_t stride, int64_t first, int64_t limit) {
  constexpr int kChunks = kHeadDim / 8;
#pragma unroll
  for (int i = static_cast<int>(threadIdx.x); i < kRows * kChunks; i += kThreads) {
    const int r = i / kChunks;
    const int c = i % kChunks;
    const int64_t row = first + r;
    const bool valid = row < limit;
    const __nv_bfloat16* g = source + (valid ? row : 0) * stride + c * 8;
    cp_async_16(shared_address(tile + swizzled<kHeadDim>(r, c)), g, valid);
  }
}

template <int kHeadDim, int kWarps>
__global__ void __launch_bounds__(kWarps * 32, kWarps == 4 ? 2 : 1)
    attention_mma_kernel(const __nv_bfloat16* __restrict__ q, int64_t q_stride,
                         const __nv_bfloat16* __restrict__ k, int64_t k_stride,
                         const __nv_bfloat16* __restrict__ v, int64_t v_stride,
                         __nv_bfloat16* __restrict__ out, int64_t out_stride, int64_t n_q,
                         int64_t q_begin, int group, float scale_log2) {
  constexpr int kBlockM = 16 * kWarps;
  constexpr int kThreads = 32 * kWarps;
  constexpr int kTile = kBlockN * kHeadDim;
  constexpr int kSteps = kHeadDim / 16;    // k-steps of Q K^T
  constexpr int kDimTiles = kHeadDim / 8;  // n-tiles of P V
  extern __shared__ __align__(128) unsigned char shared_raw[];
  auto* q_tile = reinterpret_cast<__nv_bfloat16*>(shared_raw);
  __nv_bfloat16* k_tiles = q_tile + kBlockM * kHeadDim;  // two stages
  __nv_bfloat16* v_tiles = k_tiles + 2 * kTile;          // two stages

  // The longest rows (most keys) first, so the tail of the grid is short work.
  const int64_t m_block = static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x;
  const int head = static_cast<int>(blockIdx.y);
  const int64_t row0 = m_block * kBlockM;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4;  // accumulator row within the warp's 16 (and g + 8)
  const int t4 = lane % 4;

  const __nv_bfloat16* q_head = q + static_cast<int64_t>(head) * kHeadDim;
  const int64_t kv_column = static_cast<int64_t>(head / group) * kHeadDim;
  const __nv_bfloat16* k_head = k + kv_column;
  const __nv_bfloat16* v_head = v + kv_column;

  const int64_t last_row = min(row0 + kBlockM, n_q) - 1;
  const int64_t keys = q_begin + last_row + 1;  // keys any valid row of the block sees
  const int tiles = static_cast<int>((keys + kBlockN - 1) / kBlockN);

  load_tile<kHeadDim, kBlockM, kThreads>(q_tile, q_head, q_stride, row0, n_q);
  load_tile<kHeadDim, kBlockN, kThreads>(k_tiles, k_head, k_stride, 0, keys);
  load_tile<kHeadDim, kBlockN, kThreads>(v_tiles, v_head, v_stride, 0, keys);
  cp_async_commit();

  uint32_t q_frag[kSteps][4];
  float o[kDimTiles][4];
#pragma unroll
  for (int j = 0; j < kDimTiles; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY};
  float row_sum[2] = {0.0f, 0.0f};  // this thread's part; the quad is summed at the end

  const int64_t position[2] = {q_begin + row0 + warp * 16 + g, q_begin + row0 + warp * 16 + g + 8};
  const int64_t last_key = keys - 1;

  for (int tile = 0; tile < tiles; ++tile) {
    const int stage = tile & 1;
    if (tile + 1 < tiles) {
      const int64_t next = static_cast<int64_t>(tile + 1) * kBlockN;
      load_tile<kHeadDim, kBlockN, kThreads>(k_tiles + (stage ^ 1) * kTile, k_head, k_stride, next,
                                             keys);
      load_tile<kHeadDim, kBlockN, kThreads>(v_tiles + (stage ^ 1) * kTile, v_head, v_stride, next,
                                             keys);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();

    if (tile == 0) {
#pragma unroll
      for (int s = 0; s < kSteps; ++s) {
        const int r = warp * 16 + (lane % 8) + ((lane / 8) % 2) * 8;
        ldmatrix_x4(q_frag[s], shared_address(q_tile + swizzled<kHeadDim>(r, 2 * s + lane / 16)));
      }
    }

    // S = Q K^T for this warp's 16 rows and the tile's 64 keys (8 n-tiles of 8).
    const __nv_bfloat16* k_tile = k_tiles + stage * kTile;
    float s[8][4];
#pragma unroll
    for (int j = 0; j < 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
    for (int step = 0; step < kSteps; step += 2) {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        uint32_t b[4];
        ldmatrix_x4(
            b, shared_address(k_tile + swizzled<kHeadDim>(8 * j + lane % 8, 2 * step + lane / 8)));
        mma_bf16(s[j], q_frag[step], b[0], b[1]);
        mma_bf16(s[j], q_frag[step + 1], b[2], b[3]);
      }
    }

    // Mask keys past each row's position (and past the block's last key, for padding rows).
    const int64_t key0 = static_cast<int64_t>(tile) * kBlockN;
    if (key0 + kBlockN - 1 > q_begin + row0 || key0 + kBlockN - 1 > last_key) {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int64_t key = key0 + 8 * j + 2 * t4 + (e & 1);
          if (key > min(position[e / 2], last_key)) s[j][e] = -INFINITY;
        }
      }
    }

    // Online softmax on raw scores: p = 2^(s * scale_log2 - max * scale_log2), one FFMA and
    // one ex2 per score; rescale what was accumulated by the change of the running maximum.
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float tile_max = -INFINITY;
#pragma unroll
      for (int j = 0; j < 8; ++j)
        tile_max = fmaxf(tile_max, fmaxf(s[j][2 * half], s[j][2 * half + 1]));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
      // Finite from the first tile on: key 0 is visible to every row.
      const float new_max = fmaxf(row_max[half], tile_max);
      const float correction = fast_exp2((row_max[half] - new_max) * scale_log2);
      row_max[half] = new_max;
      const float offset = new_max * scale_log2;
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        s[j][2 * half] = fast_exp2(fmaf(s[j][2 * half], scale_log2, -offset));
        s[j][2 * half + 1] = fast_exp2(fmaf(s[j][2 * half + 1], scale_log2, -offset));
        sum += s[j][2 * half] + s[j][2 * half + 1];
      }
      row_sum[half] = row_sum[half] * correction + sum;
#pragma unroll
      for (int j = 0; j < kDimTiles; ++j) {
        o[j][2 * half] *= correction;
        o[j][2 * half + 1] *= correction;
      }
    }

    // O += P V: P's accumulator layout is the A operand's, four keys-wide k-steps of 16.
    const __nv_bfloat16* v_tile = v_tiles + stage * kTile;
#pragma unroll
    for (int step = 0; step < kBlockN / 16; ++step) {
      const uint32_t p[4] = {pack_bf16(s[2 * step][0], s[2 * step][1]),
                             pack_bf16(s[2 * step][2], s[2 * step][3]),
                             pack_bf16(s[2 * step + 1][0], s[2 * step + 1][1]),
                             pack_bf16(s[2 * step + 1][2], s[2 * step + 1][3])};
#pragma unroll
      for (int j = 0; j < kDimTiles; j += 2) {
        uint32_t b[4];
        const int r = 16 * step + (lane % 8) + ((lane / 8) % 2) * 8;
        ldmatrix_x4_trans(b, shared_address(v_tile + swizzled<kHeadDim>(r, j + lane / 16)));
        mma_bf16(o[j], p, b[0], b[1]);
        mma_bf16(o[j + 1], p, b[2], b[3]);
      }
    }
    __syncthreads();  // the next iteration refills this stage
  }

#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float total = row_sum[half];
    total += __shfl_xor_sync(0xffffffffu, total, 1);
    total += __shfl_xor_sync(0xffffffffu, total, 2);
    const float inverse = 1.0f / total;
    const int64_t row = row0 + warp * 16 + g + 8 * half;
    if (row >= n_q) continue;
    __nv_bfloat16* o_row = out + row * out_stride + static_cast<int64_t>(head) * kHeadDim;
#pragma unroll
    for (int j = 0; j < kDimTiles; ++j) {
      *reinterpret_cast<__nv_bfloat162*>(o_row + 8 * j + 2 * t4) =
          __floats2bfloat162_rn(o[j][2 * half] * inverse, o[j][2 * half + 1] * inverse);
    }
  }
}

bool aligned16(const Tensor& t) {
  return reinterpret_cast<uintptr_t>(t.data) % 16 == 0 && t.row_stride % 8 == 0;
}

template <int kHeadDim, int kWarps>
cudaError_t launch(const AttentionArgs& a, size_t max_shared_bytes, cudaStream_t stream) {
  constexpr int kBlockM = 16 * kWarps;
  const size_t shared =
      static_cast<size_t>(kBlockM + 4 * kBlockN) * kHeadDim * sizeof(__nv_bfloat16);
  if (shared > max_shared_bytes) return cudaErrorInvalidConfiguration;
  // Per call: the attribute belongs to the current device.
  const cudaError_t configured =
      cudaFuncSetAttribute(attention_mma_kernel<kHeadDim, kWarps>,
                           cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared));
  if (configured != cudaSuccess) return configured;
  const dim3 grid(static_cast<unsigned>((a.q.rows + kBlockM - 1) / kBlockM),
                  static_cast<unsigned>(a.n_heads));
  attention_mma_kernel<kHeadDim, kWarps><<<grid, kWarps * 32, shared, stream>>>(
      a.q.as<__nv_bfloat16>(), a.q.row_stride, a.k.as<__nv_bfloat16>(), a.k.row_stride,
      a.v.as<__nv_bfloat16>(), a.v.row_stride, a.out.as<__nv_bfloat16>(), a.out.row_stride,
      a.q.rows, a.q_begin, a.n_heads / a.n_kv_heads, a.scale * 1.4426950408889634f);
  return cudaGetLastError();
}

}  // namespace

bool attention_mma_supports(const AttentionArgs& a) {
  return (a.head_dim == 64 || a.head_dim == 128) && a.n_kv_heads > 0 &&
         a.n_heads % a.n_kv_heads == 0 && aligned16(a.q) && aligned16(a.k) && aligned16(a.v) &&
         aligned16(a.out);
}

int attention_mma_default_warps(size_t max_shared_bytes) {
  // 128 query rows (8 warps) halve the K/V traffic per query when the tiles fit.
  const size_t needed = static_cast<size_t>(128 + 4 * kBlockN) * 128 * sizeof(__nv_bfloat16);
  return max_shared_bytes >= needed ? 8 : 4;
}

cudaError_t launch_attention_mma(const AttentionArgs& a, size_t max_shared_bytes, int warps,
                                 cudaStream_t stream) {
  if (a.q.rows == 0) return cudaSuccess;
  if (warps != 4 && warps != 8) return cudaErrorInvalidValue;
  if (a.head_dim == 128) {
    return warps == 8 ? launch<128, 8>(a, max_shared_bytes, stream)
                      : launch<128, 4>(a, max_shared_bytes, stream);
  }
  if (a.head_dim == 64) {
    return warps == 8 ? launch<64, 8>(a, max_shared_bytes, stream)
                      : launch<64, 4>(a, max_shared_bytes, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace runahead
