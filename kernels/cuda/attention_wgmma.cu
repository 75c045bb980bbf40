#include "kernels/cuda/attention_wgmma.h"
#include "kernels/cuda/device_primitives.cuh"

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

namespace runahead {
namespace {

using namespace cuda_primitives;

// One warpgroup (4 warps) per block: 64 query rows x tiles of 64 keys. S = Q K^T and O += P V
// run on wgmma (sm_90a) with Q, K and V in 128-byte-swizzled shared tiles; P stays in registers.
// 49 KB of shared memory and <= 170 registers a thread let three blocks share a multiprocessor,
// so one block's softmax overlaps the others' matrix products.
constexpr int kBlockM = 64;
constexpr int kBlockN = 64;
constexpr int kThreads = 128;

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define RUNAHEAD_WGMMA 1
#endif

// Device code exists only in the sm_90a pass; the portable PTX pass gets a stub.
#ifdef RUNAHEAD_WGMMA

constexpr int kAtomBytes = 128;  // one swizzle row: 64 bf16

// Makes this thread's shared-memory writes visible to the tensor cores' (async proxy) reads.
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_wait_all() {
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
}
// d (64 x 64, fp32) (+)= A (64 x 16, shared, K-major) * B (64 x 16, shared, K-major)^T;
// accumulate == 0 overwrites d.
__device__ __forceinline__ void wgmma_m64n64k16_ss(float (&d)[32], uint64_t a, uint64_t b,
                                                   int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, "
      "%9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, "
      "%27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
        "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
        "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
        "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
        "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(a), "l"(b), "r"(accumulate));
}

// d (64 x 128, fp32) += A (64 x 16, registers) * B (16 x 128, shared); kTransB: B is stored
// N-major (rows of N contiguous) rather than K-major.
template <int kTransB>
__device__ __forceinline__ void wgmma_m64n128k16_rs(float (&d)[64], const uint32_t (&a)[4],
                                                    uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, "
      "%9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, "
      "%27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, "
      "%45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, "
      "%63}, {%64, %65, %66, %67}, %68, p, 1, 1, %70;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
        "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
        "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
        "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
        "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]),
        "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]),
        "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),
        "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]),
        "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1), "n"(kTransB));
}

// d (64 x 64, fp32) += A (64 x 16, registers) * B (16 x 64, shared); kTransB: B is stored
// N-major (rows of N contiguous) rather than K-major.
template <int kTransB>
__device__ __forceinline__ void wgmma_m64n64k16_rs(float (&d)[32], const uint32_t (&a)[4],
                                                   uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, "
      "%9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, "
      "%27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
        "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
        "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
        "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
        "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1), "n"(kTransB));
}
// Shared-memory matrix descriptor, 128-byte swizzle: start address, leading and stride byte
// offsets (K-major: SBO = 1024 between groups of 8 rows; N-major: LBO between 64-wide column
// blocks, SBO = 1024 between groups of 8 K rows).
__device__ __forceinline__ uint64_t descriptor(uint32_t address, uint32_t leading,
                                               uint32_t stride) {
  return static_cast<uint64_t>((address >> 4) & 0x3fff) |
         (static_cast<uint64_t>((leading >> 4) & 0x3fff) << 16) |
         (static_cast<uint64_t>((stride >> 4) & 0x3fff) << 32) | (uint64_t{1} << 62);
}

// Byte offset of 16-byte chunk `chunk` (8 bf16) of row `row` in a tile of `rows` rows whose
// columns are split into 64-wide blocks of [rows][128 bytes], each row swizzled by row % 8.
__device__ __forceinline__ uint32_t swizzled_offset(int row, int chunk, int rows) {
  const int block = chunk / 8;
  const int within = chunk % 8;
  return static_cast<uint32_t>(block * rows * kAtomBytes + row * kAtomBytes +
                               ((within ^ (row & 7)) << 4));
}

// Rows [first, first + kRows) of a [*, kHeadDim] head view into a swizzled tile (zero-filled
// at or past `limit`).
template <int kHeadDim, int kRows>
__device__ __forceinline__ void load_tile(uint32_t tile, const __nv_bfloat16* source,
                                          int64_t stride, int64_t first, int64_t limit) {
  constexpr int kChunks = kHeadDim / 8;
#pragma unroll
  for (int i = static_cast<int>(threadIdx.x); i < kRows * kChunks; i += kThreads) {
    const int r = i / kChunks;
    const int c = i % kChunks;
    const int64_t row = first + r;
    const bool valid = row < limit;
    cp_async_16(tile + swizzled_offset(r, c, kRows), source + (valid ? row : 0) * stride + c * 8,
                valid);
  }
}

#endif  // RUNAHEAD_WGMMA

template <int kHeadDim>
__global__ void __launch_bounds__(kThreads, 3)
    attention_wgmma_kernel(const __nv_bfloat16* __restrict__ q, int64_t q_stride,
                           const __nv_bfloat16* __restrict__ k, int64_t k_stride,
                           const __nv_bfloat16* __restrict__ v, int64_t v_stride,
                           __nv_bfloat16* __restrict__ out, int64_t out_stride, int64_t n_q,
                           int64_t q_begin, int group, float scale_log2) {
#ifdef RUNAHEAD_WGMMA
  constexpr int kTileBytes = kBlockN * kHeadDim * 2;
  constexpr int kDimTiles = kHeadDim / 8;
  extern __shared__ unsigned char shared_raw[];
  // Swizzled tiles want 1024-byte alignment; the launch adds the slack.
  unsigned char* base = shared_raw + ((1024 - (shared_address(shared_raw) & 1023)) & 1023);
  unsigned char* q_tile = base;
  unsigned char* k_tile = q_tile + kBlockM * kHeadDim * 2;
  unsigned char* v_tile = k_tile + kTileBytes;

  const int64_t m_block = static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x;
  const int head = static_cast<int>(blockIdx.y);
  const int64_t row0 = m_block * kBlockM;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4;
  const int t4 = lane % 4;

  const __nv_bfloat16* q_head = q + static_cast<int64_t>(head) * kHeadDim;
  const int64_t kv_column = static_cast<int64_t>(head / group) * kHeadDim;
  const __nv_bfloat16* k_head = k + kv_column;
  const __nv_bfloat16* v_head = v + kv_column;

  const int64_t last_row = min(row0 + kBlockM, n_q) - 1;
  const int64_t keys = q_begin + last_row + 1;
  const int64_t last_key = keys - 1;
  const int tiles = static_cast<int>((keys + kBlockN - 1) / kBlockN);

  // One K and one V tile, refilled as soon as the tensor cores are done with them: K(t+1) loads
  // during softmax and P V of tile t, V(t+1) during Q K^T of tile t+1. cp.async groups, oldest
  // first: [Q, K0], [V0], then [K(t+1)] and [V(t+1)] per tile, so waiting for all but the
  // newest group always finds the tile needed next.
  load_tile<kHeadDim, kBlockM>(shared_address(q_tile), q_head, q_stride, row0, n_q);
  load_tile<kHeadDim, kBlockN>(shared_address(k_tile), k_head, k_stride, 0, keys);
  cp_async_commit();
  load_tile<kHeadDim, kBlockN>(shared_address(v_tile), v_head, v_stride, 0, keys);
  cp_async_commit();

  float o[kHeadDim / 2];
#pragma unroll
  for (int i = 0; i < kHeadDim / 2; ++i) o[i] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY};
  float row_sum[2] = {0.0f, 0.0f};
  const int64_t position[2] = {q_begin + row0 + warp * 16 + g, q_begin + row0 + warp * 16 + g + 8};
  const uint32_t q_address = shared_address(q_tile);
  const uint32_t k_address = shared_address(k_tile);
  const uint32_t v_address = shared_address(v_tile);

  for (int tile = 0; tile < tiles; ++tile) {
    const bool more = tile + 1 < tiles;
    const int64_t next = static_cast<int64_t>(tile + 1) * kBlockN;
    cp_async_wait<1>();
    fence_proxy_async();
    __syncthreads();  // K(t) is in place

    // S = Q K^T: kHeadDim / 16 k-steps over 64-wide swizzle blocks.
    float s[32];
    wgmma_fence();
#pragma unroll
    for (int step = 0; step < kHeadDim / 16; ++step) {
      const uint32_t q_offset = (step / 4) * kBlockM * kAtomBytes + (step % 4) * 32;
      const uint32_t k_offset = (step / 4) * kBlockN * kAtomBytes + (step % 4) * 32;
      wgmma_m64n64k16_ss(s, descriptor(q_address + q_offset, 16, 1024),
                         descriptor(k_address + k_offset, 16, 1024), step > 0 ? 1 : 0);
    }
    wgmma_commit();
    wgmma_wait_all();
    __syncthreads();  // every warp is done with K(t)
    if (more) load_tile<kHeadDim, kBlockN>(k_address, k_head, k_stride, next, keys);
    cp_async_commit();

    // s[4 * j + e]: row g + 8 * (e / 2) of this warp's 16, key 8 * j + 2 * t4 + e % 2.
    const int64_t key0 = static_cast<int64_t>(tile) * kBlockN;
    if (key0 + kBlockN - 1 > q_begin + row0 || key0 + kBlockN - 1 > last_key) {
#pragma unroll
      for (int i = 0; i < 32; ++i) {
        const int64_t key = key0 + 8 * (i / 4) + 2 * t4 + (i & 1);
        if (key > min(position[(i % 4) / 2], last_key)) s[i] = -INFINITY;
      }
    }
    // Online softmax on raw scores: p = 2^(s * scale_log2 - max * scale_log2).
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float tile_max = -INFINITY;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        tile_max = fmaxf(tile_max, fmaxf(s[4 * j + 2 * half], s[4 * j + 2 * half + 1]));
      }
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
        s[4 * j + 2 * half] = fast_exp2(fmaf(s[4 * j + 2 * half], scale_log2, -offset));
        s[4 * j + 2 * half + 1] = fast_exp2(fmaf(s[4 * j + 2 * half + 1], scale_log2, -offset));
        sum += s[4 * j + 2 * half] + s[4 * j + 2 * half + 1];
      }
      row_sum[half] = row_sum[half] * correction + sum;
#pragma unroll
      for (int j = 0; j < kDimTiles; ++j) {
        o[4 * j + 2 * half] *= correction;
        o[4 * j + 2 * half + 1] *= correction;
      }
    }

    // O += P V: P's accumulator layout is the register A operand's, k-steps of 16 keys; V is
    // read N-major ([64 keys][kHeadDim]: 16 keys = 2048 bytes on, d blocks 64 x 128 bytes apart).
    uint32_t p[kBlockN / 16][4];
#pragma unroll
    for (int step = 0; step < kBlockN / 16; ++step) {
      p[step][0] = pack_bf16(s[8 * step + 0], s[8 * step + 1]);
      p[step][1] = pack_bf16(s[8 * step + 2], s[8 * step + 3]);
      p[step][2] = pack_bf16(s[8 * step + 4], s[8 * step + 5]);
      p[step][3] = pack_bf16(s[8 * step + 6], s[8 * step + 7]);
    }
    cp_async_wait<1>();
    fence_proxy_async();
    __syncthreads();  // V(t) is in place
    wgmma_fence();
#pragma unroll
    for (int step = 0; step < kBlockN / 16; ++step) {
      const uint64_t b = descriptor(v_address + step * 16 * kAtomBytes, kBlockN * kAtomBytes, 1024);
      if constexpr (kHeadDim == 128) {
        wgmma_m64n128k16_rs<1>(o, p[step], b);
      } else {
        wgmma_m64n64k16_rs<1>(o, p[step], b);
      }
    }
    wgmma_commit();
    wgmma_wait_all();
    __syncthreads();  // every warp is done with V(t)
    if (more) load_tile<kHeadDim, kBlockN>(v_address, v_head, v_stride, next, keys);
    cp_async_commit();
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
          __floats2bfloat162_rn(o[4 * j + 2 * half] * inverse, o[4 * j + 2 * half + 1] * inverse);
    }
  }
#else
  // Built for a target without wgmma: the host never launches this (see attention_wgmma_usable).
  __trap();
#endif
}

bool aligned16(const Tensor& t) {
  return reinterpret_cast<uintptr_t>(t.data) % 16 == 0 && t.row_stride % 8 == 0;
}

template <int kHeadDim>
cudaError_t launch(const AttentionArgs& a, size_t max_shared_bytes, cudaStream_t stream) {
  const size_t shared =
      static_cast<size_t>(kBlockM + 2 * kBlockN) * kHeadDim * sizeof(__nv_bfloat16) + 1024;
  if (shared > max_shared_bytes) return cudaErrorInvalidConfiguration;
  auto* kernel = attention_wgmma_kernel<kHeadDim>;
  // Per call: the attribute belongs to the current device.
  const cudaError_t configured = cudaFuncSetAttribute(
      kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared));
  if (configured != cudaSuccess) return configured;
  const dim3 grid(static_cast<unsigned>((a.q.rows + kBlockM - 1) / kBlockM),
                  static_cast<unsigned>(a.n_heads));
  kernel<<<grid, kThreads, shared, stream>>>(
      a.q.as<__nv_bfloat16>(), a.q.row_stride, a.k.as<__nv_bfloat16>(), a.k.row_stride,
      a.v.as<__nv_bfloat16>(), a.v.row_stride, a.out.as<__nv_bfloat16>(), a.out.row_stride,
      a.q.rows, a.q_begin, a.n_heads / a.n_kv_heads, a.scale * 1.4426950408889634f);
  return cudaGetLastError();
}

}  // namespace

bool attention_wgmma_usable(const cudaDeviceProp& properties) {
  // sm_90a machine code runs on compute capability 9.0 exactly.
  return properties.major == 9 && properties.minor == 0;
}

bool attention_wgmma_supports(const AttentionArgs& a) {
  return (a.head_dim == 64 || a.head_dim == 128) && a.n_kv_heads > 0 &&
         a.n_heads % a.n_kv_heads == 0 && aligned16(a.q) && aligned16(a.k) && aligned16(a.v) &&
         aligned16(a.out);
}

cudaError_t launch_attention_wgmma(const AttentionArgs& a, size_t max_shared_bytes,
                                   cudaStream_t stream) {
  if (a.q.rows == 0) return cudaSuccess;
  if (a.head_dim == 128) return launch<128>(a, max_shared_bytes, stream);
  if (a.head_dim == 64) return launch<64>(a, max_shared_bytes, stream);
  return cudaErrorInvalidValue;
}

}  // namespace runahead
