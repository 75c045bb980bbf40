// Authentication at Hello over real TCP loopback, against a control server holding a cluster
// key and a client key: peers with the right key join; a peer without a key, with the other
// role's key or with a wrong one is refused with a HelloAck naming why and never reaches the
// server's owner; a recorded proof replayed on a new connection and the coordinator's own proof
// reflected back fail; a peer with a key refuses a coordinator that cannot prove it; a server
// without keys refuses a non-loopback address unless insecure; refusals are logged at a bounded
// rate.
#include <gtest/gtest.h>

#include <thread>

#include <asio/executor_work_guard.hpp>

#include "net/control/control_client.h"
#include "net/control/control_codec.h"
#include "net/control/handshake_proof.h"
#include "net/control/refusal_log.h"
#include "runtime/actor_system.h"
#include "tests/control_plane/control_test_support.h"
#include "tests/support/temp_dir.h"

namespace runahead::net {
namespace {

using namespace std::chrono_literals;
using testing::EventLog;
using testing::received;
using testing::TestServer;

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

ControlKey make_key(const runahead::testing::TempDir& dir, const std::string& name) {
  EXPECT_TRUE(write_key_file(dir.file(name)).is_ok());
  auto key = ControlKey::load(dir.file(name));
  EXPECT_TRUE(key.is_ok());
  return std::move(key).value();
}

Hello worker_hello(const std::string& name) {
  Hello hello;
  hello.role = PeerRole::kWorker;
  hello.name = name;
  hello.worker.backend = "cpu";
  hello.worker.model_hash = "sha256:copied-from-status";
  return hello;
}

class AuthHandshake : public ::testing::Test {
 protected:
  AuthHandshake()
      : cluster_key_(make_key(dir_, "cluster.key")),
        client_key_(make_key(dir_, "client.key")),
        other_key_(make_key(dir_, "other.key")) {
    testing::ServerOwnerOptions options;
    options.auth.cluster_key = cluster_key_;
    options.auth.client_key = client_key_;
    server_ = std::make_unique<TestServer>(options);
    testing::clear_captured_control_warnings();
  }

  Result<std::unique_ptr<WorkerControlClient>> join_worker(std::optional<ControlKey> key,
                                                           const std::string& name = "w1") {
    return WorkerControlClient::connect(loop_.io(), server_->address(), worker_hello(name),
                                        worker_events_.sink(), 5s, ControlLimits{}, std::move(key));
  }
  Result<std::unique_ptr<ClientControlClient>> join_client(std::optional<ControlKey> key) {
    return ClientControlClient::connect(loop_.io(), server_->address(), testing::client_hello("c1"),
                                        client_events_.sink(), 5s, ControlLimits{}, std::move(key));
  }

  // No Hello reached the server's owner: the peer never joined, never gets a request.
  void expect_no_hello_delivered() {
    EXPECT_FALSE(server_->events().wait_for(received<Hello>(), 200ms))
        << "a peer that failed authentication reached the coordinator";
  }

  runahead::testing::TempDir dir_;
  ControlKey cluster_key_;
  ControlKey client_key_;
  ControlKey other_key_;
  std::unique_ptr<TestServer> server_;
  EventLog<ToWorker> worker_events_;
  EventLog<ToClient> client_events_;
  ClientLoop loop_;
};

TEST_F(AuthHandshake, PeersWithTheKeyOfTheirRoleJoin) {
  auto worker = join_worker(cluster_key_);
  ASSERT_TRUE(worker.is_ok()) << worker.error().to_string();
  EXPECT_TRUE((*worker)->ack().accepted);
  auto client = join_client(client_key_);
  ASSERT_TRUE(client.is_ok()) << client.error().to_string();
  // Both Hellos reached the owner, and messages flow after the handshake.
  ASSERT_TRUE((*client)
                  ->send(SubmitRequest{.request_id = 3,
                                       .prompt_tokens = {1, 2},
                                       .max_new_tokens = 1,
                                       .sampling = {},
                                       .return_logits = false,
                                       .partition = {},
                                       .top_logprobs = 0,
                                       .ignore_eos = false})
                  .is_ok());
  EXPECT_TRUE(client_events_.wait_for(received<Token, ToClient>()));
  size_t hellos = 0;
  for (const auto& event : server_->events().snapshot()) {
    auto* got = std::get_if<ControlReceived<ToCoordinator>>(&event);
    if (got != nullptr && std::holds_alternative<Hello>(got->message)) ++hellos;
  }
  EXPECT_EQ(hellos, 2u);
}

TEST_F(AuthHandshake, WorkerWithoutTheKeyIsRefusedNamingWhy) {
  auto worker = join_worker(std::nullopt);
  ASSERT_FALSE(worker.is_ok());
  EXPECT_EQ(worker.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(worker.error().message.find("refused the connection"), std::string::npos)
      << worker.error().message;
  EXPECT_NE(worker.error().message.find("--cluster-key-file"), std::string::npos)
      << worker.error().message;
  expect_no_hello_delivered();
  EXPECT_TRUE(testing::any_warning_contains("did not authenticate"));
}

TEST_F(AuthHandshake, ClientWithoutOrWithAWrongKeyIsRefused) {
  auto keyless = join_client(std::nullopt);
  ASSERT_FALSE(keyless.is_ok());
  EXPECT_NE(keyless.error().message.find("--client-key-file"), std::string::npos)
      << keyless.error().message;
  // A wrong key: the coordinator cannot prove it, so the client gives up before proving.
  for (const ControlKey& wrong : {other_key_, cluster_key_}) {
    auto refused = join_client(wrong);
    ASSERT_FALSE(refused.is_ok());
    EXPECT_NE(refused.error().message.find("did not prove the key in " + wrong.source()),
              std::string::npos)
        << refused.error().message;
  }
  expect_no_hello_delivered();
}

TEST_F(AuthHandshake, WorkerWithTheClientKeyIsRefused) {
  auto worker = join_worker(client_key_);
  ASSERT_FALSE(worker.is_ok());
  EXPECT_NE(worker.error().message.find("did not prove the key"), std::string::npos)
      << worker.error().message;
  expect_no_hello_delivered();
}

// A raw peer that ignores the coordinator's proof and answers with a proof of its own making:
// the server refuses every proof but the right one.
class RawHandshake {
 public:
  RawHandshake(uint16_t port, Hello hello) : peer_(port), hello_(std::move(hello)) {}

  // Sends Hello (with a fresh nonce unless one is set) and reads the challenge.
  std::optional<HelloChallenge> start() {
    if (hello_.nonce.empty()) hello_.nonce = *make_handshake_nonce();
    peer_.write_message(hello_);
    auto answer = peer_.read_answer();
    if (!answer || !std::holds_alternative<HelloChallenge>(*answer)) return std::nullopt;
    return std::get<HelloChallenge>(*answer);
  }
  HandshakeTranscript transcript(const HelloChallenge& challenge) const {
    return HandshakeTranscript{.protocol_version = kProtocolVersion,
                               .role = hello_.role,
                               .peer_name = hello_.name,
                               .peer_nonce = hello_.nonce,
                               .coordinator_nonce = challenge.nonce};
  }
  std::optional<HelloAck> prove(const std::vector<uint8_t>& proof) {
    peer_.write_proof(HelloProof{proof});
    return peer_.read_ack();
  }
  const Hello& hello() const { return hello_; }
  bool closed() { return peer_.closed_by_peer(); }

 private:
  testing::RawPeer peer_;
  Hello hello_;
};

TEST_F(AuthHandshake, ProofUnderTheClientKeyDoesNotAdmitAWorker) {
  RawHandshake fake(server_->port(), worker_hello("fake"));
  auto challenge = fake.start();
  ASSERT_TRUE(challenge);
  auto ack = fake.prove(handshake_proof(client_key_, Prover::kPeer, fake.transcript(*challenge)));
  ASSERT_TRUE(ack);
  EXPECT_FALSE(ack->accepted);
  EXPECT_NE(ack->reason.find("failed authentication"), std::string::npos) << ack->reason;
  EXPECT_NE(ack->reason.find("cluster key"), std::string::npos) << ack->reason;
  EXPECT_TRUE(fake.closed());
  expect_no_hello_delivered();
  EXPECT_TRUE(testing::any_warning_contains("worker fake"));
}

TEST_F(AuthHandshake, ReplayedProofFailsOnANewConnection) {
  // A legitimate handshake, recorded by someone on the path.
  RawHandshake recorded(server_->port(), worker_hello("w1"));
  auto first = recorded.start();
  ASSERT_TRUE(first);
  const std::vector<uint8_t> proof =
      handshake_proof(cluster_key_, Prover::kPeer, recorded.transcript(*first));
  auto accepted = recorded.prove(proof);
  ASSERT_TRUE(accepted);
  EXPECT_TRUE(accepted->accepted) << accepted->reason;

  // The same Hello (same nonce) and the same proof on a new connection: the coordinator's
  // nonce is new, so the recorded proof is not the one it asks for.
  RawHandshake replay(server_->port(), recorded.hello());
  auto second = replay.start();
  ASSERT_TRUE(second);
  EXPECT_NE(second->nonce, first->nonce);
  auto ack = replay.prove(proof);
  ASSERT_TRUE(ack);
  EXPECT_FALSE(ack->accepted);
  EXPECT_NE(ack->reason.find("failed authentication"), std::string::npos) << ack->reason;
  EXPECT_TRUE(replay.closed());
}

TEST_F(AuthHandshake, CoordinatorsOwnProofReflectedBackFails) {
  RawHandshake reflect(server_->port(), worker_hello("mirror"));
  auto challenge = reflect.start();
  ASSERT_TRUE(challenge);
  auto ack = reflect.prove(challenge->proof);
  ASSERT_TRUE(ack);
  EXPECT_FALSE(ack->accepted);
}

TEST_F(AuthHandshake, RepeatedRefusalsAreLoggedAtABoundedRate) {
  for (int i = 0; i < 30; ++i) {
    testing::RawPeer peer(server_->port());
    peer.write_message(worker_hello("noisy"));
    auto ack = peer.read_ack();
    ASSERT_TRUE(ack);
    EXPECT_FALSE(ack->accepted);
  }
  size_t lines = 0;
  for (const std::string& line : testing::captured_control_warnings()) {
    if (line.find("worker noisy") != std::string::npos) ++lines;
  }
  EXPECT_GE(lines, 1u);
  EXPECT_LE(lines, 5u);
}

TEST(RefusalLog, LimitsLinesPerAddress) {
  RefusalLog log(3, std::chrono::seconds(60));
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(log.would_log("10.0.0.1"));
    log.warn("10.0.0.1", "refused");
  }
  EXPECT_FALSE(log.would_log("10.0.0.1"));
  EXPECT_TRUE(log.would_log("10.0.0.2"));
  EXPECT_EQ(address_host("10.0.0.1:4000"), "10.0.0.1");
  EXPECT_EQ(address_host("[::1]:4000"), "::1");
}

TEST(AuthHandshakeKeyless, KeyedPeerRefusesACoordinatorWithoutKeys) {
  runahead::testing::TempDir dir;
  const ControlKey key = make_key(dir, "cluster.key");
  TestServer keyless;
  EventLog<ToWorker> events;
  ClientLoop loop;
  auto worker = WorkerControlClient::connect(loop.io(), keyless.address(), worker_hello("w1"),
                                             events.sink(), 5s, ControlLimits{}, key);
  ASSERT_FALSE(worker.is_ok());
  EXPECT_NE(worker.error().message.find("cannot prove it back"), std::string::npos)
      << worker.error().message;
  // Without keys on either side, loopback works as before.
  auto plain = WorkerControlClient::connect(loop.io(), keyless.address(), worker_hello("w2"),
                                            events.sink(), 5s);
  EXPECT_TRUE(plain.is_ok()) << plain.error().to_string();
}

TEST(AuthHandshakeKeyless, ServerWithoutKeysRefusesANonLoopbackAddressUnlessInsecure) {
  runtime::ActorSystem system(runtime::ActorSystemOptions{.threads = 1});
  auto sink = [](ControlEvent<ToCoordinator>) { return Status::ok(); };
  auto refused = ControlServer::listen(system.io(), "0.0.0.0:0", sink);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(refused.error().message.find("--insecure"), std::string::npos)
      << refused.error().message;
  ControlAuth insecure;
  insecure.insecure = true;
  auto open = ControlServer::listen(system.io(), "0.0.0.0:0", sink, ControlLimits{}, insecure);
  ASSERT_TRUE(open.is_ok()) << open.error().to_string();
  (*open)->shutdown();
  auto loopback = ControlServer::listen(system.io(), "localhost:0", sink);
  ASSERT_TRUE(loopback.is_ok()) << loopback.error().to_string();
  (*loopback)->shutdown();
}

}  // namespace
}  // namespace runahead::net
