// Element types of tensors held by a backend, and host conversions between them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace runahead {

enum class DType : uint8_t { kF32, kF16, kBF16 };

constexpr size_t dtype_size(DType dtype) {
  return dtype == DType::kF32 ? 4 : 2;
}
std::string_view dtype_name(DType dtype);

inline float bf16_to_f32(uint16_t bits) {
  uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &widened, sizeof value);
  return value;
}

// Round to nearest even, as hardware and PyTorch do; NaN stays NaN.
inline uint16_t f32_to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float value);

// Converts `count` elements of `src` (of type `src_type`) to float.
void convert_to_f32(DType src_type, const void* src, float* dst, size_t count);
// Converts `count` floats to `dst_type`.
void convert_from_f32(const float* src, DType dst_type, void* dst, size_t count);

}  // namespace runahead
