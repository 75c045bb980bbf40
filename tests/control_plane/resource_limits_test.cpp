// What a peer can make the control plane hold: a frame's buffer grows as its bytes arrive (not
// to the length its header announces), frames before the handshake are small, every buffered
// byte counts against one budget per server, a trickled frame or a peer that stops reading is
// closed after the transfer timeout, a full outgoing queue closes the connection, StatusQuery
// is rate-limited, and a connecting end's keepalive holds an idle connection open.
#include <gtest/gtest.h>

// GCC 12 reports ControlClosed::connection (initialized in its declaration) as maybe
// uninitialized where std::variant's move of a client event is inlined into the tests.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <asio/executor_work_guard.hpp>
#include <cstring>
#include <thread>

#include "net/control/control_client.h"
#include "net/control/control_codec.h"
#include "net/control/control_server.h"
#include "net/control/frame.h"
#include "tests/control_plane/control_test_support.h"

namespace runahead::net {
namespace {

using namespace std::chrono_literals;
using testing::EventLog;
using testing::RawPeer;

// A ControlServer on its own io threads whose sink records events and accepts every Hello.
class LimitsServer {
 public:
  explicit LimitsServer(ControlLimits limits = {}) : guard_(io_.get_executor()) {
    auto listening = ControlServer::listen(
        io_, "127.0.0.1:0",
        [this](ControlEvent<ToCoordinator> event) {
          if (auto* got = std::get_if<ControlReceived<ToCoordinator>>(&event)) {
            if (std::holds_alternative<Hello>(got->message)) {
              HelloAck ack;
              ack.accepted = true;
              ack.peer_id = got->connection;
              (void)server_->send(got->connection, ack);
            }
          }
          events_.push(std::move(event));
          return Status::ok();
        },
        limits);
    EXPECT_TRUE(listening.is_ok()) << listening.error().to_string();
    server_ = std::move(listening).value();
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~LimitsServer() {
    server_->shutdown();
    guard_.reset();
    io_.stop();
    for (auto& thread : threads_) thread.join();
  }

  ControlServer& server() { return *server_; }
  uint16_t port() const { return server_->port(); }
  EventLog<ToCoordinator>& events() { return events_; }

  // Waits until `done()` holds (polling), up to `timeout`.
  template <typename Predicate>
  bool eventually(Predicate done, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  // A raw peer that has said Hello and read its HelloAck; its connection id.
  ConnectionId greet(RawPeer& peer, const std::string& name) {
    peer.write_message(testing::client_hello(name));
    auto ack = peer.read_ack();
    EXPECT_TRUE(ack) << name << " got no HelloAck";
    return ack ? ack->peer_id : 0;
  }

 private:
  EventLog<ToCoordinator> events_;  // outlives the threads that deliver to it
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::unique_ptr<ControlServer> server_;
  std::vector<std::thread> threads_;
};

std::vector<uint8_t> bytes_of(const FrameHeaderBytes& header) {
  return std::vector<uint8_t>(header.begin(), header.end());
}

const Status* close_reason(const std::optional<ControlEvent<ToCoordinator>>& event) {
  auto* closed = event ? std::get_if<ControlClosed>(&*event) : nullptr;
  return closed ? &closed->reason : nullptr;
}

// The top-list bullet: connections that said Hello and announced a 16 MiB body each grew the
// coordinator by 16 MiB apiece. Now each holds the first chunk of its buffer.
TEST(ControlResourceLimits, AnnouncedBodyIsNotAllocatedUntilItArrives) {
  LimitsServer fixture;
  constexpr int kPeers = 50;
  std::vector<std::unique_ptr<RawPeer>> peers;
  for (int i = 0; i < kPeers; ++i) {
    peers.push_back(std::make_unique<RawPeer>(fixture.port()));
    fixture.greet(*peers.back(), "announcer" + std::to_string(i));
    ASSERT_TRUE(peers.back()->write(bytes_of(encode_frame_header(16u << 20))));
  }
  // Every connection has taken its header and waits for the body.
  std::this_thread::sleep_for(200ms);
  const size_t held = fixture.server().buffered_bytes();
  EXPECT_LE(held, size_t{kPeers} * 20 * 1024) << "announced bodies were allocated up front";
  EXPECT_GE(held, size_t{kPeers} * 16 * 1024);

  // One of them sends 1 MiB of its body: its buffer follows, within twice what arrived.
  std::vector<uint8_t> part(1u << 20, 0x5a);
  ASSERT_TRUE(peers[0]->write(part));
  ASSERT_TRUE(
      fixture.eventually([&] { return fixture.server().buffered_bytes() >= held + 900000; }));
  EXPECT_LE(fixture.server().buffered_bytes(), held + (2u << 20) + (64u << 10));

  // Their connections gone, nothing is held.
  peers.clear();
  EXPECT_TRUE(fixture.eventually([&] { return fixture.server().buffered_bytes() == 0; }))
      << fixture.server().buffered_bytes() << " bytes still held";
}

TEST(ControlResourceLimits, FramesBeforeTheHandshakeAreSmall) {
  testing::clear_captured_control_warnings();
  LimitsServer fixture;
  RawPeer stranger(fixture.port());
  ASSERT_TRUE(stranger.write(bytes_of(encode_frame_header(1u << 20))));
  EXPECT_TRUE(stranger.closed_by_peer(2s));
  EXPECT_TRUE(testing::any_warning_contains("before its handshake"));
  EXPECT_TRUE(testing::any_warning_contains("exceeds the limit of 65536 bytes"));
}

TEST(ControlResourceLimits, SpentBudgetClosesTheConnectionThatWouldPassIt) {
  testing::clear_captured_control_warnings();
  ControlLimits limits;
  limits.max_frame_bytes = 1u << 20;
  limits.max_outgoing_bytes = 2u << 20;
  limits.max_buffered_bytes = (1u << 20) + (256u << 10);
  LimitsServer fixture(limits);

  // A large, valid frame, all but its last word sent: its buffer holds about 1 MiB.
  RawPeer large(fixture.port());
  const ConnectionId large_id = fixture.greet(large, "large");
  SubmitRequest submit;
  submit.request_id = 7;
  submit.prompt_tokens.assign(240000, 1);
  auto frame = encode_frame(ToCoordinator(submit), limits);
  ASSERT_TRUE(frame.is_ok()) << frame.error().to_string();
  ASSERT_TRUE(large.write(std::vector<uint8_t>(frame->begin(), frame->end() - 8)));
  ASSERT_TRUE(fixture.eventually([&] { return fixture.server().buffered_bytes() >= 900000; }));

  // A second peer's large frame would pass the budget: that connection is closed.
  RawPeer second(fixture.port());
  fixture.greet(second, "second");
  ASSERT_TRUE(second.write(bytes_of(encode_frame_header(1u << 20))));
  (void)second.write(std::vector<uint8_t>(600u << 10, 0x11));
  EXPECT_TRUE(second.closed_by_peer(3s));
  EXPECT_TRUE(testing::any_warning_contains("of their 1310720 bytes"));

  // The first one completes its frame and is served.
  ASSERT_TRUE(large.write(std::vector<uint8_t>(frame->end() - 8, frame->end())));
  auto got = fixture.events().wait_for([&](const ControlEvent<ToCoordinator>& event) {
    auto* received = std::get_if<ControlReceived<ToCoordinator>>(&event);
    return received != nullptr && received->connection == large_id &&
           std::holds_alternative<SubmitRequest>(received->message);
  });
  ASSERT_TRUE(got);
  EXPECT_EQ(std::get<SubmitRequest>(std::get<ControlReceived<ToCoordinator>>(*got).message),
            submit);
}

TEST(ControlResourceLimits, TrickledFrameIsClosedAfterTheTransferTimeout) {
  ControlLimits limits;
  limits.transfer_timeout = 200ms;
  LimitsServer fixture(limits);
  RawPeer trickler(fixture.port());
  const ConnectionId id = fixture.greet(trickler, "trickler");
  ASSERT_TRUE(trickler.write(bytes_of(encode_frame_header(4096))));
  ASSERT_TRUE(trickler.write(std::vector<uint8_t>(8, 0)));
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_TRUE(trickler.closed_by_peer(3s));
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 2s);
  auto gone = fixture.events().wait_for(testing::closed(id));
  ASSERT_TRUE(close_reason(gone));
  EXPECT_EQ(close_reason(gone)->code(), ErrorCode::kTimeout);
  EXPECT_NE(close_reason(gone)->message().find("8 of the 4096 bytes of a frame"), std::string::npos)
      << close_reason(gone)->message();
}

// A peer that asks and never reads: its queue fills, the connection closes, and what it held is
// released.
TEST(ControlResourceLimits, PeerThatNeverReadsIsClosedAndItsQueueReleased) {
  LimitsServer fixture;
  RawPeer deaf(fixture.port());
  const ConnectionId id = fixture.greet(deaf, "deaf");
  Token big;
  big.logits.assign(256 * 1024, 1.0f);  // 1 MiB per message
  Status last;
  int accepted = 0;
  for (int i = 0; i < 1000 && last.is_ok(); ++i) {
    last = fixture.server().send(id, ToClient(big));
    if (last.is_ok()) ++accepted;
  }
  ASSERT_FALSE(last.is_ok());
  EXPECT_EQ(last.code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(last.message().find("does not read"), std::string::npos) << last.message();
  EXPECT_LE(accepted, 64 + 32) << "the queue holds 64 MiB; the kernel's buffers a few more";
  auto gone = fixture.events().wait_for(testing::closed(id));
  ASSERT_TRUE(close_reason(gone));
  EXPECT_EQ(close_reason(gone)->code(), ErrorCode::kResourceExhausted);
  EXPECT_TRUE(fixture.eventually([&] { return fixture.server().buffered_bytes() < (64u << 10); }))
      << fixture.server().buffered_bytes();
  EXPECT_FALSE(fixture.server().send(id, ToClient(big)).is_ok());
}

// One that asks for little but never reads is closed once a write stalls past the timeout.
TEST(ControlResourceLimits, StalledWriteIsClosedAfterTheTransferTimeout) {
  ControlLimits limits;
  limits.transfer_timeout = 300ms;
  LimitsServer fixture(limits);
  RawPeer deaf(fixture.port());
  const ConnectionId id = fixture.greet(deaf, "deaf");
  Token big;
  big.logits.assign(256 * 1024, 1.0f);
  // More than the kernel's socket buffers take, less than the queue's limit.
  for (int i = 0; i < 40; ++i) {
    Status sent = fixture.server().send(id, ToClient(big));
    if (!sent.is_ok()) break;
  }
  auto gone = fixture.events().wait_for(testing::closed(id), 5s);
  ASSERT_TRUE(close_reason(gone));
  EXPECT_EQ(close_reason(gone)->code(), ErrorCode::kTimeout);
  EXPECT_NE(close_reason(gone)->message().find("does not read"), std::string::npos)
      << close_reason(gone)->message();
}

TEST(ControlResourceLimits, StatusQueryFloodClosesTheConnection) {
  testing::clear_captured_control_warnings();
  LimitsServer fixture;
  RawPeer flooder(fixture.port());
  const ConnectionId id = fixture.greet(flooder, "flooder");
  auto query = encode_frame(ToCoordinator(StatusQuery{}), ControlLimits{});
  ASSERT_TRUE(query.is_ok());
  std::vector<uint8_t> many;
  for (int i = 0; i < 500; ++i) many.insert(many.end(), query->begin(), query->end());
  (void)flooder.write(many);
  EXPECT_TRUE(flooder.closed_by_peer(3s));
  auto gone = fixture.events().wait_for(testing::closed(id));
  ASSERT_TRUE(close_reason(gone));
  EXPECT_EQ(close_reason(gone)->code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(close_reason(gone)->message().find("StatusQuery per second"), std::string::npos);
  size_t delivered = 0;
  for (const auto& event : fixture.events().snapshot()) {
    auto* got = std::get_if<ControlReceived<ToCoordinator>>(&event);
    if (got != nullptr && std::holds_alternative<StatusQuery>(got->message)) ++delivered;
  }
  EXPECT_GE(delivered, 50u);
  EXPECT_LE(delivered, 60u);
}

TEST(ControlResourceLimits, KeepaliveHoldsAnIdleClientOpen) {
  ControlLimits server_limits;
  server_limits.idle_timeout = 300ms;
  LimitsServer fixture(server_limits);
  EventLog<ToClient> client_events;  // outlives the loop that delivers to it
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::thread loop([&] { io.run(); });
  ControlLimits client_limits;
  client_limits.keepalive_interval = 100ms;
  auto client = ClientControlClient::connect(io, "127.0.0.1:" + std::to_string(fixture.port()),
                                             testing::client_hello("waiting"), client_events.sink(),
                                             2s, client_limits);
  ASSERT_TRUE(client.is_ok()) << client.error().to_string();
  const ConnectionId server_side = (*client)->ack().peer_id;
  // Three idle timeouts with nothing sent by the client's owner.
  EXPECT_FALSE(fixture.events().wait_for(testing::closed(server_side), 900ms));
  size_t heartbeats = 0;
  for (const auto& event : fixture.events().snapshot()) {
    auto* got = std::get_if<ControlReceived<ToCoordinator>>(&event);
    if (got != nullptr && std::holds_alternative<Heartbeat>(got->message)) ++heartbeats;
  }
  EXPECT_GE(heartbeats, 3u);
  client->reset();
  guard.reset();
  io.stop();
  loop.join();
}

}  // namespace
}  // namespace runahead::net
