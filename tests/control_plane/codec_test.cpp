// Control messages through the codec: every kind of every direction round-trips; a message of
// another direction is refused naming it; malformed, truncated, over-limit and unknown-kind
// input is refused with kProtocol, never a crash.
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

// Every sample of one direction encodes, decodes as that direction and compares equal; every
// alternative of the direction's variant has a sample.
template <typename Direction>
void expect_round_trips(const std::vector<Direction>& samples) {
  ControlLimits limits;
  std::vector<bool> covered(std::variant_size_v<Direction>, false);
  for (const Direction& message : samples) covered[message.index()] = true;
  for (size_t kind = 0; kind < covered.size(); ++kind) {
    EXPECT_TRUE(covered[kind]) << "no sample of message kind " << kind;
  }
  for (const Direction& message : samples) {
    SCOPED_TRACE(message_kind_name(message));
    auto frame = encode_frame(message, limits);
    ASSERT_TRUE(frame.is_ok()) << frame.error().to_string();
    auto length = decode_frame_header(
        std::span<const uint8_t, kFrameHeaderBytes>(frame->data(), kFrameHeaderBytes),
        limits.max_frame_bytes);
    ASSERT_TRUE(length.is_ok());
    EXPECT_EQ(*length + kFrameHeaderBytes, frame->size());
    auto decoded = decode_message<Direction>(body_of(*frame), limits);
    ASSERT_TRUE(decoded.is_ok()) << decoded.error().to_string();
    EXPECT_EQ(decoded->index(), message.index());
    EXPECT_TRUE(*decoded == message);
  }
}

TEST(ControlCodec, EveryKindOfEveryDirectionRoundTrips) {
  expect_round_trips(testing::sample_to_coordinator());
  expect_round_trips(testing::sample_to_worker());
  expect_round_trips(testing::sample_to_client());
  auto frame = encode_frame(testing::sample_hello_ack(), ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  auto decoded = decode_message<HelloAck>(body_of(*frame), ControlLimits{});
  ASSERT_TRUE(decoded.is_ok()) << decoded.error().to_string();
  EXPECT_EQ(*decoded, testing::sample_hello_ack());
}

TEST(ControlCodec, HandshakeMessagesRoundTrip) {
  const ControlLimits limits;
  auto challenge = encode_frame(testing::sample_hello_challenge(), limits);
  ASSERT_TRUE(challenge.is_ok());
  auto answer = decode_message<HandshakeAnswer>(body_of(*challenge), limits);
  ASSERT_TRUE(answer.is_ok()) << answer.error().to_string();
  ASSERT_TRUE(std::holds_alternative<HelloChallenge>(*answer));
  EXPECT_EQ(std::get<HelloChallenge>(*answer), testing::sample_hello_challenge());

  auto ack = encode_frame(testing::sample_hello_ack(), limits);
  ASSERT_TRUE(ack.is_ok());
  answer = decode_message<HandshakeAnswer>(body_of(*ack), limits);
  ASSERT_TRUE(answer.is_ok()) << answer.error().to_string();
  ASSERT_TRUE(std::holds_alternative<HelloAck>(*answer));
  EXPECT_EQ(std::get<HelloAck>(*answer), testing::sample_hello_ack());

  auto proof = encode_frame(testing::sample_hello_proof(), limits);
  ASSERT_TRUE(proof.is_ok());
  auto decoded = decode_message<HelloProof>(body_of(*proof), limits);
  ASSERT_TRUE(decoded.is_ok()) << decoded.error().to_string();
  EXPECT_EQ(*decoded, testing::sample_hello_proof());
}

TEST(ControlCodec, HandshakeMessagesAreRefusedOutOfPlace) {
  const ControlLimits limits;
  const auto challenge = body_of(*encode_frame(testing::sample_hello_challenge(), limits));
  const auto proof = body_of(*encode_frame(testing::sample_hello_proof(), limits));
  const auto hello = body_of(*encode_frame(testing::sample_to_coordinator()[0], limits));
  // A challenge where only HelloAck may come (after this end's proof), or at the coordinator.
  for (const Status& refused : {decode_message<HelloAck>(challenge, limits).status(),
                                decode_message<ToCoordinator>(challenge, limits).status(),
                                decode_message<ToWorker>(challenge, limits).status(),
                                decode_message<HelloProof>(challenge, limits).status()}) {
    ASSERT_FALSE(refused.is_ok());
    EXPECT_EQ(refused.code(), ErrorCode::kProtocol);
    EXPECT_NE(refused.message().find("HelloChallenge"), std::string::npos) << refused.message();
  }
  // A proof anywhere but at the coordinator during the handshake; and no Hello in its place.
  for (const Status& refused : {decode_message<ToCoordinator>(proof, limits).status(),
                                decode_message<HandshakeAnswer>(proof, limits).status(),
                                decode_message<ToClient>(proof, limits).status()}) {
    ASSERT_FALSE(refused.is_ok());
    EXPECT_NE(refused.message().find("received HelloProof, the peer's answer to HelloChallenge"),
              std::string::npos)
        << refused.message();
  }
  auto hello_as_proof = decode_message<HelloProof>(hello, limits);
  ASSERT_FALSE(hello_as_proof.is_ok());
  EXPECT_NE(hello_as_proof.error().message.find("received Hello,"), std::string::npos)
      << hello_as_proof.error().message;
}

// Decoding `frame` as each direction but its own fails naming the message and its direction.
template <typename Own>
void expect_refused_elsewhere(const std::vector<uint8_t>& frame, const std::string& name,
                              const std::string& direction) {
  SCOPED_TRACE(name);
  const std::vector<uint64_t> body = body_of(frame);
  std::vector<Error> errors;
  if (!std::is_same_v<Own, ToCoordinator>) {
    auto decoded = decode_message<ToCoordinator>(body, ControlLimits{});
    ASSERT_FALSE(decoded.is_ok()) << "decoded as a message to the coordinator";
    errors.push_back(decoded.error());
  }
  if (!std::is_same_v<Own, ToWorker>) {
    auto decoded = decode_message<ToWorker>(body, ControlLimits{});
    ASSERT_FALSE(decoded.is_ok()) << "decoded as a message to a worker";
    errors.push_back(decoded.error());
  }
  if (!std::is_same_v<Own, ToClient>) {
    auto decoded = decode_message<ToClient>(body, ControlLimits{});
    ASSERT_FALSE(decoded.is_ok()) << "decoded as a message to a client";
    errors.push_back(decoded.error());
  }
  if (!std::is_same_v<Own, HelloAck>) {
    auto decoded = decode_message<HelloAck>(body, ControlLimits{});
    ASSERT_FALSE(decoded.is_ok()) << "decoded as a HelloAck";
    errors.push_back(decoded.error());
  }
  ASSERT_EQ(errors.size(), 3u);
  for (const Error& error : errors) {
    EXPECT_EQ(error.code, ErrorCode::kProtocol);
    EXPECT_NE(error.message.find("received " + name + ", " + direction), std::string::npos)
        << error.message;
  }
}

TEST(ControlCodec, MessageOfAnotherDirectionIsRefusedNamingIt) {
  for (const ToCoordinator& message : testing::sample_to_coordinator()) {
    expect_refused_elsewhere<ToCoordinator>(*encode_frame(message, ControlLimits{}),
                                            message_kind_name(message),
                                            "a message to the coordinator");
  }
  for (const ToWorker& message : testing::sample_to_worker()) {
    expect_refused_elsewhere<ToWorker>(*encode_frame(message, ControlLimits{}),
                                       message_kind_name(message), "a message to a worker");
  }
  for (const ToClient& message : testing::sample_to_client()) {
    expect_refused_elsewhere<ToClient>(*encode_frame(message, ControlLimits{}),
                                       message_kind_name(message), "a message to a client");
  }
  expect_refused_elsewhere<HelloAck>(*encode_frame(testing::sample_hello_ack(), ControlLimits{}),
                                     "HelloAck", "the coordinator's answer to Hello");
  // The error also says what was expected.
  auto decoded = decode_message<ToWorker>(
      body_of(*encode_frame(ToCoordinator(SubmitRequest{}), ControlLimits{})), ControlLimits{});
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_NE(decoded.error().message.find("where a message to a worker was expected"),
            std::string::npos)
      << decoded.error().message;
}

TEST(ControlCodec, EncodingAboveTheFrameLimitFails) {
  ControlLimits limits;
  limits.max_frame_bytes = 1024;
  SubmitRequest big;
  big.request_id = 5;
  big.prompt_tokens.assign(1000, 7);
  auto frame = encode_frame(ToCoordinator(big), limits);
  ASSERT_FALSE(frame.is_ok());
  EXPECT_EQ(frame.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(frame.error().message.find("SubmitRequest"), std::string::npos);
}

TEST(ControlCodec, UnknownKindIsRefused) {
  capnp::MallocMessageBuilder builder;
  auto inner = builder.initRoot<schema::Envelope>().initToCoordinator();
  inner.initHeartbeat().setSequence(1);
  // The union discriminant is the first 16 bits of the struct's data section.
  auto data = capnp::toAny(inner).getDataSection();
  ASSERT_GE(data.size(), 2u);
  data[0] = 0xe7;  // 999
  data[1] = 0x03;
  auto decoded = decode_message<ToCoordinator>(words_of(builder), ControlLimits{});
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_EQ(decoded.error().code, ErrorCode::kProtocol);
  EXPECT_NE(decoded.error().message.find("unknown message kind 999 to the coordinator"),
            std::string::npos)
      << decoded.error().message;
}

TEST(ControlCodec, UnknownDirectionIsRefused) {
  capnp::MallocMessageBuilder builder;
  builder.initRoot<schema::Envelope>().initToWorker().initCancel().setRequestId(1);
  auto data = builder.getRoot<capnp::AnyStruct>().getDataSection();
  ASSERT_GE(data.size(), 2u);
  data[0] = 0xe7;  // 999
  data[1] = 0x03;
  for (auto decoded : {decode_message<ToWorker>(words_of(builder), ControlLimits{}).status(),
                       decode_message<ToCoordinator>(words_of(builder), ControlLimits{}).status(),
                       decode_message<ToClient>(words_of(builder), ControlLimits{}).status(),
                       decode_message<HelloAck>(words_of(builder), ControlLimits{}).status()}) {
    ASSERT_FALSE(decoded.is_ok());
    EXPECT_EQ(decoded.code(), ErrorCode::kProtocol);
    EXPECT_NE(decoded.message().find("unknown message direction 999"), std::string::npos)
        << decoded.message();
  }
}

TEST(ControlCodec, TruncatedMessageIsRefused) {
  auto frame = encode_frame(testing::sample_to_coordinator()[2], ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  std::vector<uint64_t> body = body_of(*frame);
  for (size_t keep = 0; keep < body.size(); ++keep) {
    std::vector<uint64_t> cut(body.begin(), body.begin() + static_cast<ptrdiff_t>(keep));
    auto decoded = decode_message<ToCoordinator>(cut, ControlLimits{});
    EXPECT_FALSE(decoded.is_ok()) << "kept " << keep << " of " << body.size() << " words";
  }
}

TEST(ControlCodec, TrailingWordsAreRefused) {
  auto frame = encode_frame(ToCoordinator(Heartbeat{1, 0, 0}), ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  std::vector<uint64_t> body = body_of(*frame);
  body.push_back(0);
  auto decoded = decode_message<ToCoordinator>(body, ControlLimits{});
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_NE(decoded.error().message.find("after its message"), std::string::npos);
}

TEST(ControlCodec, ListLimitsApply) {
  SubmitRequest request;
  request.prompt_tokens.assign(100, 1);
  auto frame = encode_frame(ToCoordinator(request), ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  ControlLimits tight;
  tight.max_list_elements = 99;
  auto decoded = decode_message<ToCoordinator>(body_of(*frame), tight);
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
  auto frame = encode_frame(ToCoordinator(request), ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  auto decoded = decode_message<ToCoordinator>(body_of(*frame), tight);
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_EQ(decoded.error().code, ErrorCode::kProtocol);
  EXPECT_NE(decoded.error().message.find("K=5 is above the limit of 4"), std::string::npos)
      << decoded.error().message;
  request.top_logprobs = 4;
  frame = encode_frame(ToCoordinator(request), ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  EXPECT_TRUE(decode_message<ToCoordinator>(body_of(*frame), tight).is_ok());

  AssignSlice assign;
  assign.top_logprobs = 9;
  frame = encode_frame(ToWorker(assign), ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  auto assigned = decode_message<ToWorker>(body_of(*frame), tight);
  ASSERT_FALSE(assigned.is_ok());
  EXPECT_NE(assigned.error().message.find("K=9"), std::string::npos) << assigned.error().message;

  // A token is checked in both directions it travels: from the last worker, to the client.
  Token token;
  token.top_tokens = {1, 2, 3, 4, 5};
  token.top_logprobs = {-1, -2, -3, -4, -5};
  frame = encode_frame(ToCoordinator(token), ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  decoded = decode_message<ToCoordinator>(body_of(*frame), tight);
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_NE(decoded.error().message.find("top log-probability ids has 5 elements"),
            std::string::npos)
      << decoded.error().message;
  frame = encode_frame(ToClient(token), ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  auto streamed = decode_message<ToClient>(body_of(*frame), tight);
  ASSERT_FALSE(streamed.is_ok());
  EXPECT_NE(streamed.error().message.find("top log-probability ids has 5 elements"),
            std::string::npos)
      << streamed.error().message;

  token.top_logprobs.pop_back();
  frame = encode_frame(ToCoordinator(token), ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  decoded = decode_message<ToCoordinator>(body_of(*frame), ControlLimits{});
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_NE(decoded.error().message.find("4 top log-probabilities for 5 ids"), std::string::npos)
      << decoded.error().message;
}

TEST(ControlCodec, TraversalAndNestingLimitsApply) {
  SubmitRequest request;
  request.prompt_tokens.assign(4096, 1);
  auto frame = encode_frame(ToCoordinator(request), ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  ControlLimits traversal;
  traversal.traversal_limit_words = 64;
  auto decoded = decode_message<ToCoordinator>(body_of(*frame), traversal);
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_EQ(decoded.error().code, ErrorCode::kProtocol);

  ControlLimits nesting;
  nesting.nesting_limit = 1;  // Envelope -> ToCoordinator -> SubmitRequest -> list is deeper
  decoded = decode_message<ToCoordinator>(body_of(*frame), nesting);
  ASSERT_FALSE(decoded.is_ok());
  EXPECT_EQ(decoded.error().code, ErrorCode::kProtocol);
}

TEST(ControlCodec, OutOfRangeEnumIsRefused) {
  {
    capnp::MallocMessageBuilder builder;
    auto error = builder.initRoot<schema::Envelope>().initToClient().initRequestError();
    error.setRequestId(3);
    error.setCode(static_cast<schema::ErrorCode>(500));
    auto decoded = decode_message<ToClient>(words_of(builder), ControlLimits{});
    ASSERT_FALSE(decoded.is_ok());
    EXPECT_NE(decoded.error().message.find("unknown error code 500"), std::string::npos);
  }
  {
    capnp::MallocMessageBuilder builder;
    auto submit = builder.initRoot<schema::Envelope>().initToCoordinator().initSubmitRequest();
    submit.initPartition().setScheme(static_cast<schema::PartitionScheme>(77));
    auto decoded = decode_message<ToCoordinator>(words_of(builder), ControlLimits{});
    ASSERT_FALSE(decoded.is_ok());
    EXPECT_EQ(decoded.error().code, ErrorCode::kProtocol);
    EXPECT_NE(decoded.error().message.find("unknown partition scheme 77"), std::string::npos)
        << decoded.error().message;
  }
}

// Numbers the wire carries unsigned that no domain value can hold are refused, not wrapped.
TEST(ControlCodec, OutOfRangeNumbersAreRefused) {
  {
    capnp::MallocMessageBuilder builder;
    auto assign = builder.initRoot<schema::Envelope>().initToWorker().initAssignSlice();
    assign.initSampling().setTopK(0x80000000u);
    auto decoded = decode_message<ToWorker>(words_of(builder), ControlLimits{});
    ASSERT_FALSE(decoded.is_ok());
    EXPECT_NE(decoded.error().message.find("top-k 2147483648 is out of range"), std::string::npos)
        << decoded.error().message;
  }
  {
    capnp::MallocMessageBuilder builder;
    auto done = builder.initRoot<schema::Envelope>().initToCoordinator().initSliceDone();
    done.initTimeline(1)[0].setComputeNanos(~uint64_t{0});
    auto decoded = decode_message<ToCoordinator>(words_of(builder), ControlLimits{});
    ASSERT_FALSE(decoded.is_ok());
    EXPECT_NE(decoded.error().message.find("compute time"), std::string::npos)
        << decoded.error().message;
  }
}

TEST(ControlCodec, PartitionSchemeNamesRoundTrip) {
  for (PartitionScheme scheme : {PartitionScheme::kBalanced, PartitionScheme::kEven,
                                 PartitionScheme::kExplicit, PartitionScheme::kSearched}) {
    auto parsed = parse_partition_scheme(partition_scheme_name(scheme));
    ASSERT_TRUE(parsed) << partition_scheme_name(scheme);
    EXPECT_EQ(*parsed, scheme);
  }
  EXPECT_FALSE(parse_partition_scheme(""));
  EXPECT_FALSE(parse_partition_scheme("Balanced"));
}

TEST(ControlCodec, RandomBytesNeverCrash) {
  std::mt19937_64 rng(20261126);
  int refused = 0;
  for (int round = 0; round < 2000; ++round) {
    std::vector<uint64_t> body(1 + rng() % 64);
    for (auto& word : body) word = rng();
    // Half the rounds keep a plausible one-segment table so the parser goes deeper.
    if (round % 2 == 0) body[0] = static_cast<uint64_t>(body.size() - 1) << 32;
    for (const Status& decoded : {decode_message<ToCoordinator>(body, ControlLimits{}).status(),
                                  decode_message<ToWorker>(body, ControlLimits{}).status(),
                                  decode_message<ToClient>(body, ControlLimits{}).status(),
                                  decode_message<HelloAck>(body, ControlLimits{}).status()}) {
      if (!decoded.is_ok()) {
        ++refused;
        EXPECT_EQ(decoded.code(), ErrorCode::kProtocol);
      }
    }
  }
  EXPECT_GT(refused, 4 * 1000);
}

}  // namespace
}  // namespace runahead::net
