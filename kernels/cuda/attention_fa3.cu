#include "kernels/cuda/attention_fa3.h"
#include "kernels/cuda/device_primitives.cuh"

#include <cuda.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace runahead {
namespace {

using namespace cuda_primitives;

// Block: 128 queries x tiles of 128 keys. Warpgroup 0 produces (one thread issues TMA loads);
// warpgroups 1 and 2 consume, 64 queries each. Shared memory: the Q tile, then kStages K tiles
// and kStages V tiles, each a set of 64-column blocks of [rows][128 bytes], 128-byte swizzled
// (the layout TMA's SWIZZLE_128B writes and wgmma's descriptors read).
constexpr int kBlockM = 128;
constexpr int kBlockN = 128;
constexpr int kThreads = 384;
constexpr int kBoxColumns = 64;

template <int kHeadDim>
struct Fa3Shape {
  static constexpr int kStages = kHeadDim == 128 ? 2 : 3;
  static constexpr int kQBytes = kBlockM * kHeadDim * 2;
  static constexpr int kTileBytes = kBlockN * kHeadDim * 2;
  // + 1024 bytes of slack to align the tiles for the swizzle.
  static constexpr size_t kSharedBytes =
      static_cast<size_t>(kQBytes) + 2u * kStages * kTileBytes + 1024;
};

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define RUNAHEAD_FA3 1
#endif

#ifdef RUNAHEAD_FA3

constexpr int kAtomBytes = 128;  // one swizzle row: 64 bf16
constexpr int kProducerRegisters = 24;
constexpr int kConsumerRegisters = 240;
constexpr int kMaxStages = 3;

// --- mbarriers and TMA ---------------------------------------------------------------------

__device__ __forceinline__ void barrier_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void barrier_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void barrier_expect_bytes(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void barrier_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (done == 0);
}
// A box of [rows][64 columns] at (column, row) of `map` into shared memory; completion is
// counted in bytes on `bar`. Rows past the tensor's end arrive as zeros.
__device__ __forceinline__ void tma_load(uint32_t destination, const CUtensorMap* map, int column,
                                         int row, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, "
      "{%2, %3}], [%4];\n" ::"r"(destination),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(column), "r"(row), "r"(bar)
      : "memory");
}

// Named barriers 1 and 2 order the consumers' tensor-core issue (barrier 0 is __syncthreads).
__device__ __forceinline__ void named_sync(int id) {
  asm volatile("bar.sync %0, 256;\n" ::"r"(id) : "memory");
}
__device__ __forceinline__ void named_arrive(int id) {
  asm volatile("bar.arrive %0, 256;\n" ::"r"(id) : "memory");
}

// --- wgmma -------------------------------------------------------------------------------

__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}
// Ties accumulator registers to the surrounding asm so the compiler neither reads them before
// the wgmma that writes them has been waited for nor moves them across its issue.
template <int kCount>
__device__ __forceinline__ void fence_registers(float (&r)[kCount]) {
#pragma unroll
  for (int i = 0; i < kCount; ++i) asm volatile("" : "+f"(r[i])::"memory");
}

// d (64 x 128, fp32) (+)= A (64 x 16, shared, K-major) * B (128 x 16, shared, K-major)^T.
__device__ __forceinline__ void wgmma_m64n128k16_ss(float (&d)[64], uint64_t a, uint64_t b,
                                                    int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, "
      "%9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, "
      "%27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, "
      "%45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, "
      "%63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
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
      : "l"(a), "l"(b), "r"(accumulate));
}

// d (64 x 128, fp32) += A (64 x 16, registers) * B (16 x 128, shared, N-major).
__device__ __forceinline__ void wgmma_m64n128k16_rs(float (&d)[64], const uint32_t (&a)[4],
                                                    uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, "
      "%9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, "
      "%27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, "
      "%45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, "
      "%63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
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
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));
}

// d (64 x 64, fp32) += A (64 x 16, registers) * B (16 x 64, shared, N-major).
__device__ __forceinline__ void wgmma_m64n64k16_rs(float (&d)[32], const uint32_t (&a)[4],
                                                   uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, "
      "%9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, "
      "%27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
        "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
        "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
        "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
        "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));
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

#endif  // RUNAHEAD_FA3

template <int kHeadDim>
__global__ void __launch_bounds__(kThreads, 1)
    attention_fa3_kernel(const __grid_constant__ CUtensorMap q_map,
                         const __grid_constant__ CUtensorMap k_map,
                         const __grid_constant__ CUtensorMap v_map, __nv_bfloat16* __restrict__ out,
                         int64_t out_stride, int64_t n_q, int64_t q_begin, int group,
                         float scale_log2) {
#ifdef RUNAHEAD_FA3
  using Shape = Fa3Shape<kHeadDim>;
  constexpr int kStages = Shape::kStages;
  constexpr int kDimTiles = kHeadDim / 8;
  constexpr int kColumnBlocks = kHeadDim / kBoxColumns;
  extern __shared__ unsigned char shared_raw[];
  // q_full; k_full, v_full (TMA bytes); k_empty, v_empty (one arrival per consumer warp).
  __shared__ alignas(8) uint64_t barriers[1 + 4 * kMaxStages];
  const uint32_t base =
      shared_address(shared_raw) + ((1024 - (shared_address(shared_raw) & 1023)) & 1023);
  const uint32_t q_tile = base;
  const uint32_t k_tiles = q_tile + Shape::kQBytes;
  const uint32_t v_tiles = k_tiles + kStages * Shape::kTileBytes;
  const uint32_t q_full = shared_address(&barriers[0]);
  const auto k_full = [&](int s) { return shared_address(&barriers[1 + s]); };
  const auto v_full = [&](int s) { return shared_address(&barriers[1 + kMaxStages + s]); };
  const auto k_empty = [&](int s) { return shared_address(&barriers[1 + 2 * kMaxStages + s]); };
  const auto v_empty = [&](int s) { return shared_address(&barriers[1 + 3 * kMaxStages + s]); };

  // Heaviest (latest) query blocks first.
  const int64_t m_block = static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x;
  const int head = static_cast<int>(blockIdx.y);
  const int kv_head = head / group;
  const int64_t row0 = m_block * kBlockM;
  const int64_t keys = q_begin + min(row0 + kBlockM, n_q);
  const int tiles = static_cast<int>((keys + kBlockN - 1) / kBlockN);
  const int warpgroup = static_cast<int>(threadIdx.x) / 128;

  if (threadIdx.x == 0) {
    barrier_init(q_full, 1);
    for (int s = 0; s < kStages; ++s) {
      barrier_init(k_full(s), 1);
      barrier_init(v_full(s), 1);
      barrier_init(k_empty(s), 8);
      barrier_init(v_empty(s), 8);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (warpgroup == 0) {
    // Producer: one thread keeps the ring full; the rest of the warpgroup leaves.
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducerRegisters));
    if (threadIdx.x != 0) return;
    barrier_expect_bytes(q_full, Shape::kQBytes);
#pragma unroll
    for (int c = 0; c < kColumnBlocks; ++c) {
      tma_load(q_tile + c * kBlockM * kAtomBytes, &q_map, head * kHeadDim + c * kBoxColumns,
               static_cast<int>(row0), q_full);
    }
    for (int t = 0; t < tiles; ++t) {
      const int s = t % kStages;
      const uint32_t free_parity = ((t / kStages) & 1) ^ 1;
      barrier_wait(k_empty(s), free_parity);
      barrier_expect_bytes(k_full(s), Shape::kTileBytes);
#pragma unroll
      for (int c = 0; c < kColumnBlocks; ++c) {
        tma_load(k_tiles + s * Shape::kTileBytes + c * kBlockN * kAtomBytes, &k_map,
                 kv_head * kHeadDim + c * kBoxColumns, t * kBlockN, k_full(s));
      }
      barrier_wait(v_empty(s), free_parity);
      barrier_expect_bytes(v_full(s), Shape::kTileBytes);
#pragma unroll
      for (int c = 0; c < kColumnBlocks; ++c) {
        tma_load(v_tiles + s * Shape::kTileBytes + c * kBlockN * kAtomBytes, &v_map,
                 kv_head * kHeadDim + c * kBoxColumns, t * kBlockN, v_full(s));
      }
    }
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegisters));
  const int consumer = warpgroup - 1;
  const int thread = static_cast<int>(threadIdx.x) % 128;
  const int warp = thread / 32;
  const int lane = thread % 32;
  const int g = lane / 4;
  const int t4 = lane % 4;
  const int my_turn = 1 + consumer;
  const int other_turn = 2 - consumer;

  // This warpgroup's 64 rows of Q inside each 64-column block of the 128-row tile.
  const uint32_t q_address = q_tile + consumer * 64 * kAtomBytes;
  const int64_t first_position = q_begin + row0 + consumer * 64;
  const int64_t position[2] = {first_position + warp * 16 + g, first_position + warp * 16 + g + 8};

  float o[kHeadDim / 2];
#pragma unroll
  for (int i = 0; i < kHeadDim / 2; ++i) o[i] = 0.0f;
  float s[64];
  uint32_t p[kBlockN / 16][4];
  float row_max[2] = {-INFINITY, -INFINITY};
  float row_sum[2] = {0.0f, 0.0f};
  float correction[2] = {1.0f, 1.0f};

  const auto issue_scores = [&](int stage) {
    const uint32_t k_address = k_tiles + stage * Shape::kTileBytes;
    wgmma_fence();
#pragma unroll
    for (int step = 0; step < kHeadDim / 16; ++step) {
      const uint32_t q_offset = (step / 4) * kBlockM * kAtomBytes + (step % 4) * 32;
      const uint32_t k_offset = (step / 4) * kBlockN * kAtomBytes + (step % 4) * 32;
      wgmma_m64n128k16_ss(s, descriptor(q_address + q_offset, 16, 1024),
                          descriptor(k_address + k_offset, 16, 1024), step > 0 ? 1 : 0);
    }
    wgmma_commit();
  };
  // O += P V: V read N-major ([128 keys][kHeadDim]: 16 keys = 2048 bytes on, d blocks
  // kBlockN x 128 bytes apart).
  const auto issue_values = [&](int stage) {
    const uint32_t v_address = v_tiles + stage * Shape::kTileBytes;
    fence_registers(o);
    wgmma_fence();
#pragma unroll
    for (int step = 0; step < kBlockN / 16; ++step) {
      const uint64_t b = descriptor(v_address + step * 16 * kAtomBytes, kBlockN * kAtomBytes, 1024);
      if constexpr (kHeadDim == 128) {
        wgmma_m64n128k16_rs(o, p[step], b);
      } else {
        wgmma_m64n64k16_rs(o, p[step], b);
      }
    }
    wgmma_commit();
  };
  // Masks tile `tile` of s, turns it into probabilities (kept in s) and updates the running
  // max/sum; `correction` rescales O. s[4 * j + e]: row g + 8 * (e / 2) of this warp's 16,
  // key 8 * j + 2 * t4 + e % 2.
  const auto softmax = [&](int tile) {
    const int64_t key0 = static_cast<int64_t>(tile) * kBlockN;
    if (key0 + kBlockN - 1 > first_position) {
#pragma unroll
      for (int i = 0; i < 64; ++i) {
        const int64_t key = key0 + 8 * (i / 4) + 2 * t4 + (i & 1);
        if (key > position[(i % 4) / 2]) s[i] = -INFINITY;
      }
    }
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float tile_max = -INFINITY;
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        tile_max = fmaxf(tile_max, fmaxf(s[4 * j + 2 * half], s[4 * j + 2 * half + 1]));
      }
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
      // Finite from the first tile on: key 0 is visible to every row.
      const float new_max = fmaxf(row_max[half], tile_max);
      correction[half] = fast_exp2((row_max[half] - new_max) * scale_log2);
      row_max[half] = new_max;
      const float offset = new_max * scale_log2;
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        s[4 * j + 2 * half] = fast_exp2(fmaf(s[4 * j + 2 * half], scale_log2, -offset));
        s[4 * j + 2 * half + 1] = fast_exp2(fmaf(s[4 * j + 2 * half + 1], scale_log2, -offset));
        sum += s[4 * j + 2 * half] + s[4 * j + 2 * half + 1];
      }
      row_sum[half] = row_sum[half] * correction[half] + sum;
    }
  };
  const auto pack_probabilities = [&] {
#pragma unroll
    for (int step = 0; step < kBlockN / 16; ++step) {
      p[step][0] = pack_bf16(s[8 * step + 0], s[8 * step + 1]);
      p[step][1] = pack_bf16(s[8 * step + 2], s[8 * step + 3]);
      p[step][2] = pack_bf16(s[8 * step + 4], s[8 * step + 5]);
      p[step][3] = pack_bf16(s[8 * step + 6], s[8 * step + 7]);
    }
  };
  const auto rescale_output = [&] {
#pragma unroll
    for (int j = 0; j < kDimTiles; ++j) {
      o[4 * j + 0] *= correction[0];
      o[4 * j + 1] *= correction[0];
      o[4 * j + 2] *= correction[1];
      o[4 * j + 3] *= correction[1];
    }
  };

  // Ping-pong: a consumer issues its tensor-core work only on its turn (named barrier
  // my_turn), then hands the turn over, so one's softmax runs under the other's wgmma.
  // Consumer 0 goes first; consumer 1 skips its last hand-over so the arrivals balance.
  if (consumer == 1) named_arrive(other_turn);
  barrier_wait(q_full, 0);

  barrier_wait(k_full(0), 0);
  named_sync(my_turn);
  issue_scores(0);
  named_arrive(other_turn);
  wgmma_wait<0>();
  fence_registers(s);
  if (lane == 0) barrier_arrive(k_empty(0));
  softmax(0);
  pack_probabilities();

  for (int t = 1; t < tiles; ++t) {
    const int stage = t % kStages;
    const int previous = (t - 1) % kStages;
    barrier_wait(k_full(stage), (t / kStages) & 1);
    barrier_wait(v_full(previous), ((t - 1) / kStages) & 1);
    named_sync(my_turn);
    issue_scores(stage);
    issue_values(previous);
    named_arrive(other_turn);
    wgmma_wait<1>();
    fence_registers(s);
    if (lane == 0) barrier_arrive(k_empty(stage));
    softmax(t);
    wgmma_wait<0>();
    fence_registers(o);
    if (lane == 0) barrier_arrive(v_empty(previous));
    rescale_output();
    pack_probabilities();
  }

  const int last = (tiles - 1) % kStages;
  barrier_wait(v_full(last), ((tiles - 1) / kStages) & 1);
  named_sync(my_turn);
  issue_values(last);
  if (consumer == 0) named_arrive(other_turn);
  wgmma_wait<0>();
  fence_registers(o);

#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float total = row_sum[half];
    total += __shfl_xor_sync(0xffffffffu, total, 1);
    total += __shfl_xor_sync(0xffffffffu, total, 2);
    const float inverse = 1.0f / total;
    const int64_t row = row0 + consumer * 64 + warp * 16 + g + 8 * half;
    if (row >= n_q) continue;
    __nv_bfloat16* o_row = out + row * out_stride + static_cast<int64_t>(head) * kHeadDim;
#pragma unroll
    for (int j = 0; j < kDimTiles; ++j) {
      *reinterpret_cast<__nv_bfloat162*>(o_row + 8 * j + 2 * t4) =
          __floats2bfloat162_rn(o[4 * j + 2 * half] * inverse, o[4 * j + 2 * half + 1] * inverse);
    }
  }
#else
  // Built for a target without wgmma/TMA: the host never launches this (attention_fa3_usable).
  __trap();
#endif
}

using EncodeTiled = decltype(&cuTensorMapEncodeTiled);

// The driver's tensor-map encoder, looked up once through the runtime (no libcuda link).
EncodeTiled encoder() {
  static const EncodeTiled function = [] {
    void* address = nullptr;
    cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &address, 12000,
                                         cudaEnableDefault, &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      return EncodeTiled{nullptr};
    }
    return reinterpret_cast<EncodeTiled>(address);
  }();
  return function;
}

// A 2-D map over the first `rows` rows of `t` with [box_rows][64 columns] boxes, 128-byte
// swizzled; reads past `rows` return zeros.
bool make_map(CUtensorMap* map, const Tensor& t, int64_t rows, int box_rows) {
  const EncodeTiled encode = encoder();
  if (encode == nullptr) return false;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(t.cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(t.row_stride) * 2};
  const cuuint32_t box[2] = {kBoxColumns, static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t element_strides[2] = {1, 1};
  return encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, t.data, dims, strides, box,
                element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

bool aligned16(const Tensor& t) {
  return reinterpret_cast<uintptr_t>(t.data) % 16 == 0 && t.row_stride % 8 == 0;
}

template <int kHeadDim>
cudaError_t launch(const AttentionArgs& a, size_t max_shared_bytes, cudaStream_t stream) {
  const size_t shared = Fa3Shape<kHeadDim>::kSharedBytes;
  if (shared > max_shared_bytes) return cudaErrorInvalidConfiguration;
  // Keys past the last query's position are never visible; the maps end there so TMA fills
  // partial tiles with zeros instead of reading whatever follows in the cache.
  const int64_t visible_keys = a.q_begin + a.q.rows;
  CUtensorMap q_map;
  CUtensorMap k_map;
  CUtensorMap v_map;
  if (!make_map(&q_map, a.q, a.q.rows, kBlockM) || !make_map(&k_map, a.k, visible_keys, kBlockN) ||
      !make_map(&v_map, a.v, visible_keys, kBlockN)) {
    return cudaErrorInvalidValue;
  }
  auto* kernel = attention_fa3_kernel<kHeadDim>;
  // Per call: the attribute belongs to the current device.
  const cudaError_t configured = cudaFuncSetAttribute(
      kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared));
  if (configured != cudaSuccess) return configured;
  const dim3 grid(static_cast<unsigned>((a.q.rows + kBlockM - 1) / kBlockM),
                  static_cast<unsigned>(a.n_heads));
  kernel<<<grid, kThreads, shared, stream>>>(
      q_map, k_map, v_map, a.out.as<__nv_bfloat16>(), a.out.row_stride, a.q.rows, a.q_begin,
      a.n_heads / a.n_kv_heads, a.scale * 1.4426950408889634f);
  return cudaGetLastError();
}

}  // namespace

bool attention_fa3_usable(const cudaDeviceProp& properties) {
  // sm_90a machine code runs on compute capability 9.0 exactly.
  const size_t shared = std::max(Fa3Shape<128>::kSharedBytes, Fa3Shape<64>::kSharedBytes);
  return properties.major == 9 && properties.minor == 0 &&
         properties.sharedMemPerBlockOptin >= shared && encoder() != nullptr;
}

bool attention_fa3_supports(const AttentionArgs& a) {
  // TMA coordinates are 32-bit; rows and columns must fit.
  constexpr int64_t kMaxCoordinate = int64_t{1} << 30;
  return (a.head_dim == 64 || a.head_dim == 128) && a.n_kv_heads > 0 &&
         a.n_heads % a.n_kv_heads == 0 && a.q.cols >= int64_t{a.n_heads} * a.head_dim &&
         a.k.cols >= int64_t{a.n_kv_heads} * a.head_dim &&
         a.v.cols >= int64_t{a.n_kv_heads} * a.head_dim && a.q_begin + a.q.rows <= a.k.rows &&
         a.q_begin + a.q.rows <= a.v.rows && a.q_begin + a.q.rows < kMaxCoordinate &&
         a.q.cols < kMaxCoordinate && a.k.cols < kMaxCoordinate && aligned16(a.q) &&
         aligned16(a.k) && aligned16(a.v) && aligned16(a.out);
}

cudaError_t launch_attention_fa3(const AttentionArgs& a, size_t max_shared_bytes,
                                 cudaStream_t stream) {
  if (a.q.rows == 0) return cudaSuccess;
  if (a.head_dim == 128) return launch<128>(a, max_shared_bytes, stream);
  if (a.head_dim == 64) return launch<64>(a, max_shared_bytes, stream);
  return cudaErrorInvalidValue;
}

}  // namespace runahead
