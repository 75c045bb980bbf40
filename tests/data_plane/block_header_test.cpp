#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include "net/data/transport.h"
#include "net/data/ucx_wire.h"

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

std::vector<uint8_t> wire_bytes(const ucx_wire::BlockHeader& wire) {
  std::vector<uint8_t> bytes(sizeof wire);
  std::memcpy(bytes.data(), &wire, sizeof wire);
  return bytes;
}

ucx_wire::BlockHeader wire_header(const KvBlockHeader& block) {
  ucx_wire::BlockHeader wire;
  wire.sender = 0xabc;
  std::strncpy(wire.sender_name, "w\x01one", ucx_wire::kSenderNameBytes);
  wire.block = block;
  return wire;
}

TEST(BlockHeaderTest, DecodesTheWireHeaderOfAConsistentBlock) {
  const std::vector<uint8_t> bytes = wire_bytes(wire_header(header(0, 2, 2 * 16384)));
  auto decoded = ucx_wire::decode_block_header(bytes, kLimits, 2 * 16384);
  ASSERT_TRUE(decoded.is_ok()) << decoded.error().to_string();
  EXPECT_EQ(decoded->block.request_id, 11u);
  EXPECT_EQ(decoded->block.token_end, 2);
  EXPECT_EQ(ucx_wire::describe_sender(bytes), "w?one (instance 0000000000000abc)");
}

TEST(BlockHeaderTest, RefusesWireHeadersOfAnotherSizeMagicOrVersion) {
  std::vector<uint8_t> bytes = wire_bytes(wire_header(header(0, 2, 2 * 16384)));
  const std::span<const uint8_t> shorter(bytes.data(), bytes.size() - 1);
  auto truncated = ucx_wire::decode_block_header(shorter, kLimits, 2 * 16384);
  ASSERT_FALSE(truncated.is_ok());
  EXPECT_EQ(truncated.error().code, ErrorCode::kProtocol);
  EXPECT_EQ(ucx_wire::describe_sender(shorter), "an unknown sender");

  ucx_wire::BlockHeader wire = wire_header(header(0, 2, 2 * 16384));
  // A later version, and the earlier one whose blocks carried no sender or capability.
  for (const uint32_t other : {ucx_wire::kBlockVersion + 1, ucx_wire::kBlockVersion - 1}) {
    wire.version = other;
    auto versioned = ucx_wire::decode_block_header(wire_bytes(wire), kLimits, 2 * 16384);
    ASSERT_FALSE(versioned.is_ok());
    EXPECT_NE(versioned.error().message.find("version " + std::to_string(other)),
              std::string::npos);
  }
  wire.version = ucx_wire::kBlockVersion;
  wire.magic = 0;
  EXPECT_FALSE(ucx_wire::decode_block_header(wire_bytes(wire), kLimits, 2 * 16384).is_ok());
}

TEST(BlockHeaderTest, DecodingAWireHeaderChecksTheBlockAgainstTheLimits) {
  const std::vector<uint8_t> bytes = wire_bytes(wire_header(header(0, 2, 2 * 16384)));
  auto on_wire = ucx_wire::decode_block_header(bytes, kLimits, 16384);
  ASSERT_FALSE(on_wire.is_ok());
  EXPECT_NE(on_wire.error().message.find("on the wire"), std::string::npos);
  BlockLimits few_layers = kLimits;
  few_layers.n_layers = 5;
  EXPECT_FALSE(ucx_wire::decode_block_header(bytes, few_layers, 2 * 16384).is_ok());
}

}  // namespace
}  // namespace runahead::net
