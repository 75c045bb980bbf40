// Control messages through the codec: every kind round-trips; malformed, truncated,
// over-limit and unknown-kind input is refused with kProtocol, never a crash.
#include <gtest/gtest.h>

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstring>
#include <random>

#include "net/control/control_codec.h"
#include "net/control/frame.h"
#include "net/control/schema/control.capnp.h"
#include "tests/control_plane/sample_messages.h"

namespace runahead::net {
namespace {

// The body of an encoded frame, as whole words.
std::vector<uint64_t> body_of(const std::vector<uint8_t>& frame) {
  std::vector<uint64_t> words((frame.size() - kFrameHeaderBytes) / 8);
  std::memcpy(words.data(), frame.data() + kFrameHeaderBytes, words.size() * 8);
  return words;
}

std::vector<uint64_t> words_of(capnp::MessageBuilder& builder) {
  kj::Array<capnp::word> flat = capnp::messageToFlatArray(builder);
  std::vector<uint64_t> words(flat.size());
  std::memcpy(words.data(), flat.begin(), flat.size() * 8);
  return words;
}

TEST(ControlCodec, EveryKindRoundTrips) {
  ControlLimits limits;
  const auto samples = testing::sample_messages();
  std::vector<bool> covered(std::variant_size_v<ControlMessage>, false);
  for (const ControlMessage& message : samples) covered[message.index()] = true;
  for (size_t kind = 0; kind < covered.size(); ++kind) {
    EXPECT_TRUE(covered[kind]) << "no sample of message kind " << kind;
  }
  for (const ControlMessage& message : samples) {
    SCOPED_TRACE(message_kind_name(message));
    auto frame = encode_frame(message, limits);
    ASSERT_TRUE(frame.is_ok()) << frame.error().to_string();
    auto length = decode_frame_header(
        std::span<const uint8_t, kFrameHeaderBytes>(frame->data(), kFrameHeaderBytes),
        limits.max_frame_bytes);
    ASSERT_TRUE(length.is_ok());
    EXPECT_EQ(*length + kFrameHeaderBytes, frame->size());
    auto decoded = decode_message(body_of(*frame), limits);
    ASSERT_TRUE(decoded.is_ok()) << decoded.error().to_string();
    EXPECT_EQ(decoded->index(), message.index());
    EXPECT_TRUE(*decoded == message);
  }
}

TEST(ControlCodec, EncodingAboveTheFrameLimitFails) {
  ControlLimits limits;
  limits.max_frame_bytes = 1024;
  SubmitRequest big;
  big.request_id = 5;
  big.prompt_tokens.assign(1000, 7);
  auto frame = encode_frame(big, limits);
  ASSERT_FALSE(frame.is_ok());
  EXPECT_EQ(frame.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(frame.error().message.find("SubmitRequest"), std::string::npos);
}

TEST(ControlCodec, UnknownKindIsRefused) {
  capnp::MallocMessageBuilder builder;
  builder.initRoot<schema::Envelope>().initHeartbeat().setSequence(1);
  // The union discriminant is the first 16 bits of the Envelope's data section.
  auto data = builder.getRoot<capnp::AnyStruct>().getDataSection();
  ASSERT_GE(data.size(), 2u);
  data[0] = 0xe7;  // 999
  data[1] = 0x03;
  auto decoded = decode_message(words_of(builder), ControlLimits{});
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_EQ(decoded.error().code, ErrorCode::kProtocol);
  EXPECT_NE(decoded.error().message.find("unknown message kind 999"), std::string::npos)
      << decoded.error().message;
}

TEST(ControlCodec, TruncatedMessageIsRefused) {
  auto frame = encode_frame(testing::sample_messages()[3], ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  std::vector<uint64_t> body = body_of(*frame);
  for (size_t keep = 0; keep < body.size(); ++keep) {
    std::vector<uint64_t> cut(body.begin(), body.begin() + static_cast<ptrdiff_t>(keep));
    auto decoded = decode_message(cut, ControlLimits{});
    EXPECT_FALSE(decoded.is_ok()) << "kept " << keep << " of " << body.size() << " words";
  }
}

TEST(ControlCodec, TrailingWordsAreRefused) {
  auto frame = encode_frame(Heartbeat{1, 0, 0}, ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  std::vector<uint64_t> body = body_of(*frame);
  body.push_back(0);
  auto decoded = decode_message(body, ControlLimits{});
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_NE(decoded.error().message.find("after its message"), std::string::npos);
}

TEST(ControlCodec, ListLimitsApply) {
  SubmitRequest request;
  request.prompt_tokens.assign(100, 1);
  auto frame = encode_frame(request, ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  ControlLimits tight;
  tight.max_list_elements = 99;
  auto decoded = decode_message(body_of(*frame), tight);
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_NE(decoded.error().message.find("prompt has 100 elements"), std::string::npos)
      << decoded.error().message;
}

// K is bounded before anything is built for it, and a token's top-K lists agree in length.
TEST(ControlCodec, TopLogprobsAreBounded) {
  ControlLimits tight;
  tight.max_top_logprobs = 4;
  SubmitRequest request;
  request.prompt_tokens = {1};
  request.top_logprobs = 5;
  auto frame = encode_frame(request, ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  auto decoded = decode_message(body_of(*frame), tight);
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_EQ(decoded.error().code, ErrorCode::kProtocol);
  EXPECT_NE(decoded.error().message.find("K=5 is above the limit of 4"), std::string::npos)
      << decoded.error().message;
  request.top_logprobs = 4;
  frame = encode_frame(request, ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  EXPECT_TRUE(decode_message(body_of(*frame), tight).is_ok());

  AssignSlice assign;
  assign.top_logprobs = 9;
  frame = encode_frame(assign, ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  decoded = decode_message(body_of(*frame), tight);
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_NE(decoded.error().message.find("K=9"), std::string::npos) << decoded.error().message;

  Token token;
  token.top_tokens = {1, 2, 3, 4, 5};
  token.top_logprobs = {-1, -2, -3, -4, -5};
  frame = encode_frame(token, ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  decoded = decode_message(body_of(*frame), tight);
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_NE(decoded.error().message.find("top log-probability ids has 5 elements"),
            std::string::npos)
      << decoded.error().message;

  token.top_logprobs.pop_back();
  frame = encode_frame(token, ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  decoded = decode_message(body_of(*frame), ControlLimits{});
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_NE(decoded.error().message.find("4 top log-probabilities for 5 ids"), std::string::npos)
      << decoded.error().message;
}

TEST(ControlCodec, TraversalAndNestingLimitsApply) {
  SubmitRequest request;
  request.prompt_tokens.assign(4096, 1);
  auto frame = encode_frame(request, ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  ControlLimits traversal;
  traversal.traversal_limit_words = 64;
  auto decoded = decode_message(body_of(*frame), traversal);
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_EQ(decoded.error().code, ErrorCode::kProtocol);

  ControlLimits nesting;
  nesting.nesting_limit = 1;  // Envelope -> SubmitRequest -> list is deeper
  decoded = decode_message(body_of(*frame), nesting);
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_EQ(decoded.error().code, ErrorCode::kProtocol);
}

TEST(ControlCodec, OutOfRangeEnumIsRefused) {
  capnp::MallocMessageBuilder builder;
  auto error = builder.initRoot<schema::Envelope>().initRequestError();
  error.setRequestId(3);
  error.setCode(static_cast<schema::ErrorCode>(500));
  auto decoded = decode_message(words_of(builder), ControlLimits{});
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_NE(decoded.error().message.find("unknown error code 500"), std::string::npos);
}

TEST(ControlCodec, RandomBytesNeverCrash) {
  std::mt19937_64 rng(20261126);
  int refused = 0;
  for (int round = 0; round < 2000; ++round) {
    std::vector<uint64_t> body(1 + rng() % 64);
    for (auto& word : body) word = rng();
    // Half the rounds keep a plausible one-segment table so the parser goes deeper.
    if (round % 2 == 0) body[0] = static_cast<uint64_t>(body.size() - 1) << 32;
    auto decoded = decode_message(body, ControlLimits{});
    if (!decoded.is_ok()) {
      ++refused;
      EXPECT_EQ(decoded.error().code, ErrorCode::kProtocol);
    }
  }
  EXPECT_GT(refused, 1000);
}

}  // namespace
}  // namespace runahead::net
