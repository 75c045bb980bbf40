// Dequantization of each supported block format, against blocks worked out by hand.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "model/gguf.h"

namespace runahead {
namespace {

void put_u16(std::vector<uint8_t>& out, uint16_t bits) {
  out.push_back(static_cast<uint8_t>(bits & 0xff));
  out.push_back(static_cast<uint8_t>(bits >> 8));
}

std::vector<float> run(GgmlType type, const std::vector<uint8_t>& bytes, int64_t count) {
  std::vector<float> out(static_cast<size_t>(count), -999.0f);
  Status status = dequantize(type, bytes.data(), bytes.size(), count, out.data());
  EXPECT_TRUE(status.is_ok()) << status.to_string();
  return out;
}

TEST(Dequantize, F32IsCopied) {
  const float values[3] = {1.5f, -0.0f, 3e38f};
  std::vector<uint8_t> bytes(sizeof values);
  std::memcpy(bytes.data(), values, sizeof values);
  EXPECT_EQ(run(GgmlType::kF32, bytes, 3), (std::vector<float>{1.5f, -0.0f, 3e38f}));
}

TEST(Dequantize, F16) {
  std::vector<uint8_t> bytes;
  for (uint16_t bits : {0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001}) put_u16(bytes, bits);
  const std::vector<float> out = run(GgmlType::kF16, bytes, 5);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], 0.5f);
  EXPECT_EQ(out[3], 65504.0f);
  EXPECT_EQ(out[4], 5.9604644775390625e-08f);  // the smallest subnormal, 2^-24
}

TEST(Dequantize, BF16) {
  std::vector<uint8_t> bytes;
  for (uint16_t bits : {0x3f80, 0xc040, 0x4049}) put_u16(bytes, bits);
  EXPECT_EQ(run(GgmlType::kBF16, bytes, 3), (std::vector<float>{1.0f, -3.0f, 3.140625f}));
}

TEST(Dequantize, Q8_0) {
  // Two blocks: d = 0.5 with q[i] = 8i - 128, then d = -2 with q[i] = i.
  std::vector<uint8_t> bytes;
  put_u16(bytes, 0x3800);
  for (int i = 0; i < 32; ++i)
    bytes.push_back(static_cast<uint8_t>(static_cast<int8_t>(8 * i - 128)));
  put_u16(bytes, 0xc000);
  for (int i = 0; i < 32; ++i) bytes.push_back(static_cast<uint8_t>(i));
  ASSERT_EQ(bytes.size(), 68u);
  const std::vector<float> out = run(GgmlType::kQ8_0, bytes, 64);
  EXPECT_EQ(out[0], -64.0f);   // 0.5 * -128
  EXPECT_EQ(out[16], 0.0f);    // 0.5 * 0
  EXPECT_EQ(out[17], 4.0f);    // 0.5 * 8
  EXPECT_EQ(out[31], 60.0f);   // 0.5 * 120
  EXPECT_EQ(out[32], -0.0f);   // -2 * 0
  EXPECT_EQ(out[33], -2.0f);   // -2 * 1
  EXPECT_EQ(out[63], -62.0f);  // -2 * 31
}

TEST(Dequantize, Q4_0) {
  // d = 2; byte j holds j in the low nibble (element j) and 15 - j in the high (element j+16).
  std::vector<uint8_t> bytes;
  put_u16(bytes, 0x4000);
  for (int j = 0; j < 16; ++j) bytes.push_back(static_cast<uint8_t>(j | ((15 - j) << 4)));
  ASSERT_EQ(bytes.size(), 18u);
  const std::vector<float> out = run(GgmlType::kQ4_0, bytes, 32);
  EXPECT_EQ(out[0], -16.0f);   // 2 * (0 - 8)
  EXPECT_EQ(out[8], 0.0f);     // 2 * (8 - 8)
  EXPECT_EQ(out[15], 14.0f);   // 2 * (15 - 8)
  EXPECT_EQ(out[16], 14.0f);   // 2 * (15 - 8)
  EXPECT_EQ(out[20], 6.0f);    // 2 * (11 - 8)
  EXPECT_EQ(out[31], -16.0f);  // 2 * (0 - 8)
}

TEST(Dequantize, Q4_1) {
  // d = 0.25, m = -1; nibbles as in the Q4_0 test.
  std::vector<uint8_t> bytes;
  put_u16(bytes, 0x3400);
  put_u16(bytes, 0xbc00);
  for (int j = 0; j < 16; ++j) bytes.push_back(static_cast<uint8_t>(j | ((15 - j) << 4)));
  ASSERT_EQ(bytes.size(), 20u);
  const std::vector<float> out = run(GgmlType::kQ4_1, bytes, 32);
  EXPECT_EQ(out[0], -1.0f);   // 0.25 * 0 - 1
  EXPECT_EQ(out[4], 0.0f);    // 0.25 * 4 - 1
  EXPECT_EQ(out[15], 2.75f);  // 0.25 * 15 - 1
  EXPECT_EQ(out[16], 2.75f);
  EXPECT_EQ(out[31], -1.0f);
}

TEST(Dequantize, RejectsShortInputAndPartialBlocks) {
  std::vector<uint8_t> bytes(33, 0);
  std::vector<float> out(64);
  EXPECT_FALSE(dequantize(GgmlType::kQ8_0, bytes.data(), bytes.size(), 32, out.data()));
  EXPECT_FALSE(dequantize(GgmlType::kQ8_0, bytes.data(), bytes.size(), 31, out.data()));
  Status unsupported = dequantize(GgmlType::kQ6_K, bytes.data(), bytes.size(), 0, out.data());
  ASSERT_FALSE(unsupported);
  EXPECT_NE(unsupported.message().find("Q6_K"), std::string::npos);
}

}  // namespace
}  // namespace runahead
