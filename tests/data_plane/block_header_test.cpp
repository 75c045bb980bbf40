#include <gtest/gtest.h>

#include <limits>

#include "net/data_plane.h"

namespace runahead::net {
namespace {

constexpr BlockLimits kLimits{
    .n_layers = 32, .bytes_per_token = 16384, .max_block_bytes = uint64_t{64} << 20};

KvBlockHeader header(int64_t begin, int64_t end, uint64_t bytes) {
  return KvBlockHeader{.request_id = 11,
                       .layer = 5,
                       .flags = 0,
                       .token_begin = begin,
                       .token_end = end,
                       .payload_bytes = bytes};
}

TEST(BlockHeaderTest, AcceptsAConsistentBlock) {
  EXPECT_TRUE(validate_block_header(header(128, 256, 128 * 16384), kLimits, 128 * 16384).is_ok());
}

TEST(BlockHeaderTest, RefusesEmptyOrNegativeRanges) {
  EXPECT_FALSE(validate_block_header(header(10, 10, 0), kLimits, 0).is_ok());
  EXPECT_FALSE(validate_block_header(header(10, 5, 0), kLimits, 0).is_ok());
  EXPECT_FALSE(validate_block_header(header(-4, 4, 8 * 16384), kLimits, 8 * 16384).is_ok());
}

TEST(BlockHeaderTest, RefusesLayerOutOfRange) {
  KvBlockHeader h = header(0, 1, 16384);
  h.layer = 32;
  const Status status = validate_block_header(h, kLimits, 16384);
  ASSERT_FALSE(status.is_ok());
  EXPECT_NE(status.message().find("layer 32"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("request 11"), std::string::npos) << status.message();
}

TEST(BlockHeaderTest, RefusesPayloadThatDisagreesWithTheWire) {
  const Status status = validate_block_header(header(0, 1, 16384), kLimits, 16383);
  ASSERT_FALSE(status.is_ok());
  EXPECT_EQ(status.code(), ErrorCode::kProtocol);
}

TEST(BlockHeaderTest, RefusesPayloadThatDisagreesWithTheTokenRange) {
  EXPECT_FALSE(validate_block_header(header(0, 2, 16384), kLimits, 16384).is_ok());
  EXPECT_FALSE(validate_block_header(header(0, 1, 16385), kLimits, 16385).is_ok());
}

TEST(BlockHeaderTest, RefusesPayloadAboveTheLimitWhateverTheHeaderClaims) {
  const uint64_t huge = uint64_t{1} << 40;
  const Status status =
      validate_block_header(header(0, static_cast<int64_t>(huge / 16384), huge), kLimits, huge);
  ASSERT_FALSE(status.is_ok());
  EXPECT_EQ(status.code(), ErrorCode::kResourceExhausted);
}

TEST(BlockHeaderTest, TokenCountsThatWouldOverflowAreRefused) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  EXPECT_FALSE(validate_block_header(header(0, max, 16384), kLimits, 16384).is_ok());
}

TEST(BlockHeaderTest, DescribeNamesTheBlock) {
  EXPECT_EQ(describe(header(0, 4, 65536)), "request 11 layer 5 tokens [0, 4) 65536 bytes");
}

}  // namespace
}  // namespace runahead::net
