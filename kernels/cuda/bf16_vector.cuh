// Device helpers: eight bf16 values moved as one 16-byte access and widened to fp32.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "core/tensor.h"

namespace runahead {

struct Float8 {
  float v[8];
};

__device__ __forceinline__ Float8 load_bf16x8(const __nv_bfloat16* p) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const auto* pairs = reinterpret_cast<const __nv_bfloat162*>(&raw);
  Float8 out;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(pairs[i]);
    out.v[2 * i] = f.x;
    out.v[2 * i + 1] = f.y;
  }
  return out;
}

__device__ __forceinline__ void store_bf16x8(__nv_bfloat16* p, const Float8& values) {
  uint4 raw;
  auto* pairs = reinterpret_cast<__nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    pairs[i] = __floats2bfloat162_rn(values.v[2 * i], values.v[2 * i + 1]);
  }
  *reinterpret_cast<uint4*>(p) = raw;
}

// Whether every row of `t` can be read in 16-byte pieces: aligned start, stride and width.
inline bool rows_vectorizable(const Tensor& t) {
  return reinterpret_cast<uintptr_t>(t.data) % 16 == 0 && t.row_stride % 8 == 0 && t.cols % 8 == 0;
}

}  // namespace runahead
