// Frame headers: magic and length checks before any allocation.
#include <gtest/gtest.h>

#include "net/control/frame.h"

namespace runahead::net {
namespace {

TEST(FrameHeader, RoundTripsTheLength) {
  FrameHeaderBytes header = encode_frame_header(4096);
  auto length = decode_frame_header(header, 1 << 20);
  ASSERT_TRUE(length.is_ok()) << length.error().to_string();
  EXPECT_EQ(*length, 4096u);
}

TEST(FrameHeader, RejectsBadMagic) {
  FrameHeaderBytes header = encode_frame_header(64);
  header[0] ^= 0xff;
  auto length = decode_frame_header(header, 1 << 20);
  ASSERT_FALSE(length.is_ok());
  EXPECT_EQ(length.error().code, ErrorCode::kProtocol);
  EXPECT_NE(length.error().message.find("magic"), std::string::npos);
}

TEST(FrameHeader, RejectsLengthsThatAreNotWholeWords) {
  for (uint32_t bad : {0u, 1u, 7u, 12u}) {
    auto length = decode_frame_header(encode_frame_header(bad), 1 << 20);
    EXPECT_FALSE(length.is_ok()) << bad;
  }
}

TEST(FrameHeader, RejectsLengthAboveTheLimit) {
  auto length = decode_frame_header(encode_frame_header(0xfffffff8u), 16u << 20);
  ASSERT_FALSE(length.is_ok());
  EXPECT_EQ(length.error().code, ErrorCode::kProtocol);
  EXPECT_NE(length.error().message.find("4294967288"), std::string::npos) << length.error().message;
  EXPECT_TRUE(decode_frame_header(encode_frame_header(16u << 20), 16u << 20).is_ok());
  EXPECT_FALSE(decode_frame_header(encode_frame_header((16u << 20) + 8), 16u << 20).is_ok());
}

}  // namespace
}  // namespace runahead::net
