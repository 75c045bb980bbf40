// The counter-based uniform generator behind random-weight models. Element `index` of a stream
// is a pure function of (stream seed, index), so a host loop and a GPU kernel of any launch
// shape produce bit-identical values: a random model is the same on every backend.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define RUNAHEAD_HOST_DEVICE __host__ __device__
#else
#define RUNAHEAD_HOST_DEVICE
#endif

namespace runahead {

// Changes whenever the values a seed yields change; random-model hashes include it.
inline constexpr uint32_t kUniformGeneratorVersion = 2;

RUNAHEAD_HOST_DEVICE inline uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// offset + scale * u with u uniform in [-1, 1) on 24 bits. u is exact in fp32, and the one
// fused multiply-add rounds once on every compiler and device, with or without contraction.
RUNAHEAD_HOST_DEVICE inline float uniform_value(uint64_t seed, uint64_t index, float scale,
                                                float offset) {
  const uint64_t bits = splitmix64(seed * 0x2545f4914f6cdd1dull + index);
  const float u = static_cast<float>(bits >> 40) * (2.0f / 16777216.0f) - 1.0f;
  return fmaf(scale, u, offset);
}

}  // namespace runahead
