// Two endpoints over real TCP loopback: handshake, messages both ways, close notices,
// version mismatch, refusal, handshake and connect timeouts, a full outgoing queue.
#include <gtest/gtest.h>

#include <thread>

#include <asio/executor_work_guard.hpp>
#include <asio/write.hpp>

#include "net/control/control_client.h"
#include "net/control/control_codec.h"
#include "tests/control_plane/control_test_support.h"

namespace runahead::net {
namespace {

using namespace std::chrono_literals;
using testing::EventLog;
using testing::received;
using testing::TestServer;

// A client-side io_context with one thread running it.
class ClientLoop {
 public:
  ClientLoop() : guard_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~ClientLoop() {
    guard_.reset();
    io_.stop();
    thread_.join();
  }
  asio::io_context& io() { return io_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

TEST(ControlTcp, WorkerAndServerExchangeMessages) {
  TestServer server;
  EventLog<ToWorker> client_events;  // outlives the loop that delivers to it
  ClientLoop loop;
  Hello hello;
  hello.role = PeerRole::kWorker;
  hello.name = "w1";
  hello.worker.backend = "cpu";
  hello.worker.model_hash = "sha256:abc";
  hello.worker.data_plane_address = {1, 2, 3};
  auto client =
      WorkerControlClient::connect(loop.io(), server.address(), hello, client_events.sink(), 2s);
  ASSERT_TRUE(client.is_ok()) << client.error().to_string();
  EXPECT_TRUE((*client)->ack().accepted);

  // The server's owner saw the Hello, with the worker's details intact.
  auto got_hello = server.events().wait_for(received<Hello>());
  ASSERT_TRUE(got_hello);
  const auto& hello_event = std::get<ControlReceived<ToCoordinator>>(*got_hello);
  EXPECT_EQ(std::get<Hello>(hello_event.message), hello);
  EXPECT_EQ((*client)->ack().peer_id, hello_event.connection);

  SliceReady ready;
  ready.request_id = 11;
  ready.worker_id = (*client)->ack().peer_id;
  ready.kv_target = {5, 6, 7};
  ASSERT_TRUE((*client)->send(ready).is_ok());
  auto got_ready = server.events().wait_for(received<SliceReady>());
  ASSERT_TRUE(got_ready);
  EXPECT_EQ(std::get<SliceReady>(std::get<ControlReceived<ToCoordinator>>(*got_ready).message),
            ready);

  auto start = client_events.wait_for(received<StartSlice, ToWorker>());
  ASSERT_TRUE(start);
  const StartSlice& reply =
      std::get<StartSlice>(std::get<ControlReceived<ToWorker>>(*start).message);
  EXPECT_EQ(reply.request_id, 11u);
  EXPECT_EQ(reply.successor_kv_target, ready.kv_target);

  // Many messages keep their order.
  for (uint64_t i = 0; i < 200; ++i) ASSERT_TRUE((*client)->send(Heartbeat{i, 0, 0}).is_ok());
  auto last = server.events().wait_for([](const ControlEvent<ToCoordinator>& event) {
    auto* got = std::get_if<ControlReceived<ToCoordinator>>(&event);
    auto* beat = got ? std::get_if<Heartbeat>(&got->message) : nullptr;
    return beat != nullptr && beat->sequence == 199;
  });
  ASSERT_TRUE(last);
  uint64_t expected = 0;
  for (const auto& event : server.events().snapshot()) {
    auto* got = std::get_if<ControlReceived<ToCoordinator>>(&event);
    if (auto* beat = got ? std::get_if<Heartbeat>(&got->message) : nullptr) {
      EXPECT_EQ(beat->sequence, expected++);
    }
  }

  // The worker going away is noticed by the server's owner, naming it.
  const ConnectionId server_side = hello_event.connection;
  client->reset();
  auto gone = server.events().wait_for(testing::closed(server_side));
  ASSERT_TRUE(gone);
  EXPECT_NE(std::get<ControlClosed>(*gone).peer.find("worker w1"), std::string::npos)
      << std::get<ControlClosed>(*gone).peer;
}

TEST(ControlTcp, ClientAndServerExchangeMessages) {
  TestServer server;
  EventLog<ToClient> client_events;  // outlives the loop that delivers to it
  ClientLoop loop;
  auto client = ClientControlClient::connect(loop.io(), server.address(),
                                             testing::client_hello("c1"), client_events.sink(), 2s);
  ASSERT_TRUE(client.is_ok()) << client.error().to_string();

  SubmitRequest submit;
  submit.request_id = 11;
  submit.prompt_tokens = {5, 6, 7};
  ASSERT_TRUE((*client)->send(submit).is_ok());
  auto got_submit = server.events().wait_for(received<SubmitRequest>());
  ASSERT_TRUE(got_submit);
  EXPECT_EQ(std::get<SubmitRequest>(std::get<ControlReceived<ToCoordinator>>(*got_submit).message),
            submit);

  auto token = client_events.wait_for(received<Token, ToClient>());
  ASSERT_TRUE(token);
  const Token& reply = std::get<Token>(std::get<ControlReceived<ToClient>>(*token).message);
  EXPECT_EQ(reply.request_id, 11u);
  EXPECT_EQ(reply.token, 3);
}

// A connecting end takes only its own direction: a worker's connection that is sent what only
// a client receives closes, naming the message.
TEST(ControlTcp, WorkerRefusesAMessageToAClient) {
  TestServer server;
  EventLog<ToWorker> client_events;  // outlives the loop that delivers to it
  ClientLoop loop;
  Hello hello;
  hello.role = PeerRole::kWorker;
  hello.name = "w2";
  auto client =
      WorkerControlClient::connect(loop.io(), server.address(), hello, client_events.sink(), 2s);
  ASSERT_TRUE(client.is_ok()) << client.error().to_string();
  SubmitRequest submit;  // the test server answers it with a Token, a message to a client
  submit.request_id = 12;
  ASSERT_TRUE((*client)->send(submit).is_ok());
  auto gone = client_events.wait_for(testing::closed<ToWorker>((*client)->id()));
  ASSERT_TRUE(gone);
  const Status& reason = std::get<ControlClosed>(*gone).reason;
  EXPECT_EQ(reason.code(), ErrorCode::kProtocol);
  EXPECT_NE(reason.message().find("received Token, a message to a client"), std::string::npos)
      << reason.message();
  EXPECT_FALSE(client_events.wait_for(received<StartSlice, ToWorker>(), 50ms));
}

TEST(ControlTcp, ClientIsToldWhenTheServerGoesAway) {
  EventLog<ToClient> client_events;  // outlives the loop that delivers to it
  ClientLoop loop;
  ConnectionId id = 0;
  {
    TestServer server;
    auto client = ClientControlClient::connect(
        loop.io(), server.address(), testing::client_hello("status"), client_events.sink(), 2s);
    ASSERT_TRUE(client.is_ok()) << client.error().to_string();
    id = (*client)->id();
    // Keep the client; stop the server under it.
    auto keep = std::move(client).value();
    server.system().stop(runtime::StopMode::kDrop);
    auto gone = client_events.wait_for(testing::closed<ToClient>(id));
    ASSERT_TRUE(gone);
    EXPECT_FALSE(std::get<ControlClosed>(*gone).reason.is_ok());
  }
}

TEST(ControlTcp, VersionMismatchIsRefusedAtConnect) {
  TestServer server;
  EventLog<ToClient> client_events;  // outlives the loop that delivers to it
  ClientLoop loop;
  Hello hello = testing::client_hello("old");
  hello.protocol_version = kProtocolVersion + 1;
  auto client =
      ClientControlClient::connect(loop.io(), server.address(), hello, client_events.sink(), 2s);
  ASSERT_FALSE(client.is_ok());
  EXPECT_EQ(client.error().code, ErrorCode::kProtocol);
  const std::string& message = client.error().message;
  EXPECT_NE(message.find("protocol version " + std::to_string(kProtocolVersion + 1)),
            std::string::npos)
      << message;
  EXPECT_NE(message.find(server.address()), std::string::npos) << message;
  // The owner never saw the peer.
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(server.events().size(), 0u);
}

TEST(ControlTcp, ServerSpeakingAnotherVersionIsRefusedByTheClient) {
  // A raw "server" that answers any Hello with a HelloAck of another version.
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  const uint16_t port = acceptor.local_endpoint().port();
  std::thread fake([&] {
    asio::ip::tcp::socket socket(io);
    acceptor.accept(socket);
    HelloAck ack;
    ack.protocol_version = kProtocolVersion + 7;
    ack.accepted = true;
    auto frame = encode_frame(ack, ControlLimits{});
    asio::write(socket, asio::buffer(*frame));
    std::this_thread::sleep_for(200ms);
  });
  EventLog<ToClient> client_events;  // outlives the loop that delivers to it
  ClientLoop loop;
  auto client =
      ClientControlClient::connect(loop.io(), "127.0.0.1:" + std::to_string(port),
                                   testing::client_hello("new"), client_events.sink(), 2s);
  fake.join();
  ASSERT_FALSE(client.is_ok());
  EXPECT_EQ(client.error().code, ErrorCode::kProtocol);
  EXPECT_NE(client.error().message.find("version " + std::to_string(kProtocolVersion + 7)),
            std::string::npos)
      << client.error().message;
}

TEST(ControlTcp, OwnerRefusalReachesTheClientWithItsReason) {
  testing::ServerOwnerOptions options;
  options.accept = false;
  TestServer server(options);
  EventLog<ToClient> client_events;  // outlives the loop that delivers to it
  ClientLoop loop;
  auto client = ClientControlClient::connect(loop.io(), server.address(),
                                             testing::client_hello("w9"), client_events.sink(), 2s);
  ASSERT_FALSE(client.is_ok());
  EXPECT_EQ(client.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(client.error().message.find("model hash differs"), std::string::npos)
      << client.error().message;
}

TEST(ControlTcp, ConnectFailsClearlyWhenNobodyListens) {
  uint16_t unused_port = 0;
  {
    asio::io_context io;
    asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
    unused_port = probe.local_endpoint().port();
  }
  EventLog<ToClient> client_events;  // outlives the loop that delivers to it
  ClientLoop loop;
  const std::string address = "127.0.0.1:" + std::to_string(unused_port);
  auto client = ClientControlClient::connect(loop.io(), address, testing::client_hello("c"),
                                             client_events.sink(), 2s);
  ASSERT_FALSE(client.is_ok());
  EXPECT_EQ(client.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(client.error().message.find(address), std::string::npos) << client.error().message;
}

TEST(ControlTcp, ConnectTimesOutWhenThePeerNeverAnswers) {
  // Accepts at the TCP level (backlog) but never speaks.
  asio::io_context io;
  asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
  EventLog<ToClient> client_events;  // outlives the loop that delivers to it
  ClientLoop loop;
  const auto begin = std::chrono::steady_clock::now();
  auto client = ClientControlClient::connect(
      loop.io(), "127.0.0.1:" + std::to_string(silent.local_endpoint().port()),
      testing::client_hello("c"), client_events.sink(), 200ms);
  ASSERT_FALSE(client.is_ok());
  EXPECT_EQ(client.error().code, ErrorCode::kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 2s);
}

TEST(ControlTcp, ServerClosesConnectionsThatNeverSayHello) {
  testing::ServerOwnerOptions options;
  options.limits.handshake_timeout = 100ms;
  TestServer server(options);
  testing::RawPeer silent(server.port());
  EXPECT_TRUE(silent.closed_by_peer(2s));
}

TEST(ControlTcp, SilentPeerIsClosedAfterTheIdleTimeoutWhileHeartbeatsKeepOthersOpen) {
  testing::ServerOwnerOptions options;
  options.limits.idle_timeout = 300ms;
  TestServer server(options);
  auto greet = [&](testing::RawPeer& peer, const char* name) -> ConnectionId {
    peer.write_message(testing::client_hello(name));
    auto ack = peer.read_ack();
    EXPECT_TRUE(ack);
    return ack ? ack->peer_id : 0;
  };
  testing::RawPeer chatty(server.port());
  testing::RawPeer silent(server.port());
  greet(chatty, "chatty");
  const ConnectionId silent_id = greet(silent, "silent");

  for (uint64_t i = 0; i < 10; ++i) {  // 600 ms of heartbeats, twice the idle timeout
    chatty.write_message(Heartbeat{i, 0, 0});
    std::this_thread::sleep_for(60ms);
  }
  EXPECT_TRUE(silent.closed_by_peer(2s));
  auto gone = server.events().wait_for(testing::closed(silent_id));
  ASSERT_TRUE(gone);
  EXPECT_EQ(std::get<ControlClosed>(*gone).reason.code(), ErrorCode::kTimeout);
  EXPECT_NE(std::get<ControlClosed>(*gone).peer.find("client silent"), std::string::npos);

  SubmitRequest submit;
  submit.request_id = 1;
  chatty.write_message(submit);
  auto reply = chatty.read_message();
  EXPECT_TRUE(reply && std::holds_alternative<Token>(*reply)) << "heartbeats kept it open";
}

TEST(ControlTcp, FullOutgoingQueueIsAnErrorNotGrowth) {
  testing::ServerOwnerOptions options;
  options.limits.max_outgoing_messages = 4;
  TestServer server(options);
  // A peer that completes the handshake, then never reads.
  testing::RawPeer reader(server.port());
  reader.write_message(testing::client_hello("slow"));
  auto ack = reader.read_ack();
  ASSERT_TRUE(ack);
  const ConnectionId connection = ack->peer_id;

  Token big;
  big.logits.assign(256 * 1024, 1.0f);  // 1 MiB per message
  Status last;
  int accepted = 0;
  for (int i = 0; i < 256 && last.is_ok(); ++i) {
    last = server.send(connection, big);
    if (last.is_ok()) ++accepted;
  }
  ASSERT_FALSE(last.is_ok()) << "the queue never filled";
  EXPECT_EQ(last.code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(last.message().find("outgoing queue"), std::string::npos) << last.message();
  EXPECT_NE(last.message().find("client slow"), std::string::npos) << last.message();
  EXPECT_GE(accepted, 4);
}

}  // namespace
}  // namespace runahead::net
