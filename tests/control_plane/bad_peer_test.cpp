// Hostile peers: garbage, a truncated frame, an oversized length prefix, an unknown kind, a
// message of another direction, a message before Hello. Each is logged naming the peer and its
// connection closed; the server and its other connections carry on.
#include <gtest/gtest.h>

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/serialize.h>

#include <asio/executor_work_guard.hpp>
#include <cstring>
#include <thread>

#include "net/control/control_codec.h"
#include "net/control/frame.h"
#include "net/control/schema/control.capnp.h"
#include "tests/control_plane/control_test_support.h"

namespace runahead::net {
namespace {

using namespace std::chrono_literals;
using testing::RawPeer;
using testing::received;
using testing::TestServer;

// A header followed by `body` (which need not match it).
std::vector<uint8_t> frame_bytes(const FrameHeaderBytes& header, const std::vector<uint8_t>& body) {
  std::vector<uint8_t> bytes(kFrameHeaderBytes + body.size());
  std::memcpy(bytes.data(), header.data(), kFrameHeaderBytes);
  if (!body.empty()) std::memcpy(bytes.data() + kFrameHeaderBytes, body.data(), body.size());
  return bytes;
}

class BadPeer : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::clear_captured_control_warnings();
    // A well-behaved client, connected before the attacks and checked after each.
    good_ = std::make_unique<RawPeer>(server_.port());
    good_->write_message(testing::client_hello("good"));
    auto ack = good_->read_ack();
    ASSERT_TRUE(ack);
  }

  // The server still answers the good client, and still accepts new connections.
  void expect_server_healthy() {
    SubmitRequest submit;
    submit.request_id = ++request_;
    submit.prompt_tokens = {1, 2};
    good_->write_message(submit);
    auto reply = good_->read_message();
    ASSERT_TRUE(reply && std::holds_alternative<Token>(*reply)) << "the good client lost service";
    EXPECT_EQ(std::get<Token>(*reply).request_id, request_);

    RawPeer fresh(server_.port());
    fresh.write_message(testing::client_hello("fresh"));
    auto ack = fresh.read_ack();
    ASSERT_TRUE(ack) << "new connections refused";
  }

  TestServer server_;
  std::unique_ptr<RawPeer> good_;
  uint64_t request_ = 0;
};

TEST_F(BadPeer, GarbageIsRejectedAndLogged) {
  RawPeer attacker(server_.port());
  std::vector<uint8_t> garbage(64);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(i * 37 + 11);
  EXPECT_TRUE(attacker.write(garbage));
  EXPECT_TRUE(attacker.closed_by_peer());
  EXPECT_TRUE(testing::any_warning_contains(attacker.local_address()));
  EXPECT_TRUE(testing::any_warning_contains("bad frame magic"));
  expect_server_healthy();
}

TEST_F(BadPeer, OversizedLengthPrefixIsRejectedBeforeTheBodyArrives) {
  RawPeer attacker(server_.port());
  // 4 GiB - 8: accepting it would mean waiting for (and allocating) the body. The server must
  // close at once, on the header alone.
  EXPECT_TRUE(attacker.write(frame_bytes(encode_frame_header(0xfffffff8u), {})));
  EXPECT_TRUE(attacker.closed_by_peer(2s));
  EXPECT_TRUE(testing::any_warning_contains("exceeds the limit"));
  EXPECT_TRUE(testing::any_warning_contains(attacker.local_address()));
  expect_server_healthy();
}

TEST_F(BadPeer, TruncatedFrameIsRejected) {
  RawPeer attacker(server_.port());
  auto frame = encode_frame(ToCoordinator(testing::client_hello("cut")), ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  std::vector<uint8_t> half(frame->begin(),
                            frame->begin() + static_cast<ptrdiff_t>(frame->size() / 2));
  EXPECT_TRUE(attacker.write(half));
  attacker.shutdown_send();
  EXPECT_TRUE(attacker.closed_by_peer());
  EXPECT_TRUE(testing::any_warning_contains("truncated frame"));
  EXPECT_TRUE(testing::any_warning_contains(attacker.local_address()));
  expect_server_healthy();
}

TEST_F(BadPeer, MalformedMessageInAWellFormedFrameIsRejected) {
  RawPeer attacker(server_.port());
  // A frame whose segment table claims far more words than the frame holds.
  std::vector<uint64_t> body = {uint64_t{1000} << 32, 0};
  std::vector<uint8_t> body_bytes(body.size() * 8);
  std::memcpy(body_bytes.data(), body.data(), body_bytes.size());
  EXPECT_TRUE(attacker.write(
      frame_bytes(encode_frame_header(static_cast<uint32_t>(body_bytes.size())), body_bytes)));
  EXPECT_TRUE(attacker.closed_by_peer());
  EXPECT_TRUE(testing::any_warning_contains("malformed message"));
  expect_server_healthy();
}

TEST_F(BadPeer, UnknownKindClosesAGreetedConnectionAndTheOwnerIsTold) {
  RawPeer attacker(server_.port());
  attacker.write_message(testing::client_hello("future"));
  auto ack = attacker.read_ack();
  ASSERT_TRUE(ack);
  const ConnectionId connection = ack->peer_id;

  capnp::MallocMessageBuilder builder;
  auto inner = builder.initRoot<schema::Envelope>().initToCoordinator();
  inner.initHeartbeat();
  auto data = capnp::toAny(inner).getDataSection();
  data[0] = 200;  // a kind this build does not know
  data[1] = 0;
  kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  auto body = words.asBytes();
  EXPECT_TRUE(attacker.write(frame_bytes(encode_frame_header(static_cast<uint32_t>(body.size())),
                                         std::vector<uint8_t>(body.begin(), body.end()))));

  EXPECT_TRUE(attacker.closed_by_peer());
  EXPECT_TRUE(testing::any_warning_contains("unknown message kind 200"));
  EXPECT_TRUE(testing::any_warning_contains("client future"));
  auto gone = server_.events().wait_for(testing::closed(connection));
  ASSERT_TRUE(gone) << "the owner must learn that the peer is gone";
  EXPECT_NE(std::get<ControlClosed>(*gone).reason.message().find("unknown message kind"),
            std::string::npos);
  expect_server_healthy();
}

TEST_F(BadPeer, MessageOfAnotherDirectionClosesTheConnectionNamingIt) {
  RawPeer attacker(server_.port());
  attacker.write_message(testing::client_hello("confused"));
  auto ack = attacker.read_ack();
  ASSERT_TRUE(ack);
  const ConnectionId connection = ack->peer_id;
  // What only the coordinator sends, sent to it.
  AssignSlice assign;
  assign.request_id = 5;
  auto frame = encode_frame(ToWorker(assign), ControlLimits{});
  ASSERT_TRUE(frame.is_ok());
  EXPECT_TRUE(attacker.write(*frame));

  EXPECT_TRUE(attacker.closed_by_peer());
  EXPECT_TRUE(testing::any_warning_contains("received AssignSlice, a message to a worker"));
  EXPECT_TRUE(testing::any_warning_contains("client confused"));
  auto gone = server_.events().wait_for(testing::closed(connection));
  ASSERT_TRUE(gone);
  EXPECT_NE(std::get<ControlClosed>(*gone).reason.message().find("AssignSlice"), std::string::npos);
  for (const auto& event : server_.events().snapshot()) {
    auto* got = std::get_if<ControlReceived<ToCoordinator>>(&event);
    if (got != nullptr && got->connection == connection) {
      EXPECT_TRUE(std::holds_alternative<Hello>(got->message)) << "it reached the owner";
    }
  }
  expect_server_healthy();
}

TEST_F(BadPeer, MessageBeforeHelloIsRejected) {
  RawPeer attacker(server_.port());
  attacker.write_message(StatusQuery{});
  EXPECT_TRUE(attacker.closed_by_peer());
  EXPECT_TRUE(testing::any_warning_contains("StatusQuery before Hello"));
  expect_server_healthy();
}

TEST_F(BadPeer, ManyAttackersInARow) {
  for (int i = 0; i < 20; ++i) {
    RawPeer attacker(server_.port());
    FrameHeaderBytes header = encode_frame_header(static_cast<uint32_t>(8 * (i + 1)));
    header[i % 4] ^= static_cast<uint8_t>(i % 3);  // some with a broken magic
    // A short, garbage body.
    EXPECT_TRUE(attacker.write(frame_bytes(header, std::vector<uint8_t>(4, 0xab))));
    attacker.shutdown_send();
    EXPECT_TRUE(attacker.closed_by_peer());
  }
  expect_server_healthy();
}

TEST(FloodingPeer, FullOwnerMailboxClosesTheConnectionInsteadOfQueueingMore) {
  testing::clear_captured_control_warnings();
  testing::ServerOwnerOptions options;
  options.mailbox_capacity = 4;
  TestServer server(options);
  RawPeer flooder(server.port());
  flooder.write_message(testing::client_hello("flooder"));
  auto ack = flooder.read_ack();
  ASSERT_TRUE(ack);

  std::promise<void> release;
  ASSERT_TRUE(server.block(release.get_future().share()).is_ok());
  for (uint64_t i = 0; i < 32; ++i) {
    if (!flooder.write(*encode_frame(ToCoordinator(Heartbeat{i, 0, 0}), ControlLimits{}))) break;
  }
  EXPECT_TRUE(flooder.closed_by_peer());
  EXPECT_TRUE(testing::any_warning_contains("mailbox of actor server-owner is full"));
  release.set_value();

  // The owner got what fitted, and serves new peers.
  auto fourth = server.events().wait_for([](const ControlEvent<ToCoordinator>& event) {
    auto* got = std::get_if<ControlReceived<ToCoordinator>>(&event);
    auto* beat = got ? std::get_if<Heartbeat>(&got->message) : nullptr;
    return beat != nullptr && beat->sequence == 3;
  });
  EXPECT_TRUE(fourth);
  size_t heartbeats = 0;
  for (const auto& event : server.events().snapshot()) {
    auto* got = std::get_if<ControlReceived<ToCoordinator>>(&event);
    if (got && std::holds_alternative<Heartbeat>(got->message)) ++heartbeats;
  }
  EXPECT_LE(heartbeats, 4u);
  RawPeer fresh(server.port());
  fresh.write_message(testing::client_hello("fresh"));
  auto fresh_ack = fresh.read_ack();
  EXPECT_TRUE(fresh_ack);
}

}  // namespace
}  // namespace runahead::net
