#include "net/control/control_server.h"

#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include "core/log.h"
#include "core/log_limiter.h"
#include "core/token_bucket.h"
#include "net/control/buffer_budget.h"
#include "net/control/control_connection.h"
#include "net/control/handshake_proof.h"
#include "net/control/host_port.h"
#include "net/control/peer_description.h"
#include "net/control/refusal_log.h"

namespace runahead::net {

namespace {

const char* role_name(PeerRole role) {
  return role == PeerRole::kWorker ? "worker" : "client";
}
const char* key_flag(PeerRole role) {
  return role == PeerRole::kWorker ? "--cluster-key-file" : "--client-key-file";
}
const char* key_name(PeerRole role) {
  return role == PeerRole::kWorker ? "cluster key" : "client key";
}

}  // namespace

// One connection's handshake on the server side; read and written on its strand only.
struct ServerHandshake {
  // Set between HelloChallenge and the peer's HelloProof.
  struct AwaitingProof {
    Hello hello;
    std::vector<uint8_t> coordinator_nonce;
  };
  std::optional<AwaitingProof> awaiting_proof;
};

class ControlServer::Impl : public std::enable_shared_from_this<ControlServer::Impl> {
 public:
  Impl(asio::io_context& io, ControlEventSink<ToCoordinator> sink, ControlLimits limits,
       ControlAuth auth)
      : io_(io),
        acceptor_(asio::make_strand(io)),
        sink_(std::move(sink)),
        limits_(limits),
        budget_(std::make_shared<BufferBudget>(limits.max_buffered_bytes)),
        auth_(std::move(auth)) {}

  Status bind(const HostPort& address) {
    std::error_code error;
    asio::ip::tcp::resolver resolver(io_);
    auto endpoints = resolver.resolve(address.host, std::to_string(address.port),
                                      asio::ip::tcp::resolver::passive, error);
    if (error || endpoints.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("cannot resolve control listen address {}: {}",
                                    address.to_string(), error ? error.message() : "no address"));
    }
    bool loopback_only = true;
    for (const auto& entry : endpoints) {
      if (!entry.endpoint().address().is_loopback()) loopback_only = false;
    }
    RUNAHEAD_RETURN_IF_ERROR(auth_.check_listen(address.to_string(), loopback_only));
    const asio::ip::tcp::endpoint endpoint = endpoints.begin()->endpoint();
    acceptor_.open(endpoint.protocol(), error);
    if (!error) acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), error);
    if (!error) acceptor_.bind(endpoint, error);
    if (!error) acceptor_.listen(asio::socket_base::max_listen_connections, error);
    if (error) {
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("cannot listen for control connections on {}: {}",
                                    address.to_string(), error.message()));
    }
    local_ = acceptor_.local_endpoint(error);
    return Status::ok();
  }

  void start_accepting() {
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] { self->accept_next(); });
  }

  std::string local_address() const {
    return HostPort{local_.address().to_string(), local_.port()}.to_string();
  }
  uint16_t port() const { return local_.port(); }

  std::shared_ptr<ControlConnection> find(ConnectionId id) const {
    std::lock_guard lock(mutex_);
    auto it = connections_.find(id);
    return it == connections_.end() ? nullptr : it->second;
  }

  size_t connection_count() const {
    std::lock_guard lock(mutex_);
    return connections_.size();
  }

  const BufferBudget& budget() const { return *budget_; }

  template <typename Message>
  Status send(ConnectionId connection, const Message& message);

  void shutdown() {
    std::unordered_map<ConnectionId, std::shared_ptr<ControlConnection>> connections;
    {
      std::lock_guard lock(mutex_);
      if (shut_down_) return;
      shut_down_ = true;
      connections.swap(connections_);
    }
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
      std::error_code ignored;
      self->acceptor_.close(ignored);
    });
    for (auto& [id, connection] : connections) {
      connection->close(make_error(ErrorCode::kCancelled, "control server shutting down"));
    }
  }

 private:
  void accept_next() {
    acceptor_.async_accept(asio::make_strand(io_), [self = shared_from_this()](
                                                       const std::error_code& error,
                                                       asio::ip::tcp::socket socket) {
      if (error == asio::error::operation_aborted || !self->acceptor_.is_open()) return;
      if (error) {
        // Out of descriptors under a flood, for instance: once per attempt, so limited.
        warn_limited(*logger("control"), "control: accept failed",
                     "control: accept on {} failed: {}", self->local_address(), error.message());
      } else {
        self->adopt(std::move(socket));
      }
      self->accept_next();
    });
  }

  void adopt(asio::ip::tcp::socket socket) {
    std::error_code error;
    const auto remote = socket.remote_endpoint(error);
    const std::string address =
        error ? std::string("unknown peer")
              : HostPort{remote.address().to_string(), remote.port()}.to_string();
    // Control messages are small and latency-bound (streamed tokens): no Nagle delay.
    socket.set_option(asio::ip::tcp::no_delay(true), error);
    apply_tcp_keepalive(socket, limits_.keepalive);
    auto connection =
        std::make_shared<ControlConnection>(std::move(socket), address, limits_, budget_);
    {
      std::lock_guard lock(mutex_);
      if (shut_down_) return;
      if (connections_.size() >= limits_.max_connections) {
        warn_limited(*logger("control"), "control: refused",
                     "control: refusing {}: already {} connections (the limit)", address,
                     connections_.size());
        connection->close(make_error(ErrorCode::kResourceExhausted, "too many connections"));
        return;
      }
      connections_.emplace(connection->id(), connection);
    }
    // Armed before reading starts: a Hello handled first would find no deadline to disarm.
    connection->arm_deadline(
        limits_.handshake_timeout,
        make_error(ErrorCode::kTimeout, fmt::format("no Hello from {} within {} ms", address,
                                                    limits_.handshake_timeout.count())));
    std::weak_ptr<Impl> weak = weak_from_this();
    // This connection's allowance of StatusQuery; used on its strand only.
    auto status_queries = std::make_shared<TokenBucket>(limits_.status_queries_per_second,
                                                        limits_.status_queries_per_second);
    auto handshake = std::make_shared<ServerHandshake>();
    connection->start(
        [weak, address, status_queries, handshake](ControlConnection& from,
                                                   std::span<const uint64_t> body) -> Status {
          auto self = weak.lock();
          if (!self) return make_error(ErrorCode::kCancelled, "control server is gone");
          if (handshake->awaiting_proof) {
            RUNAHEAD_ASSIGN_OR_RETURN(HelloProof proof,
                                      decode_message<HelloProof>(body, from.limits()));
            return self->on_proof(from, address, *handshake, proof);
          }
          RUNAHEAD_ASSIGN_OR_RETURN(ToCoordinator message,
                                    decode_message<ToCoordinator>(body, from.limits()));
          logger("control")->trace("control: {} from {}", message_kind_name(message), from.peer());
          if (std::holds_alternative<StatusQuery>(message) &&
              !status_queries->take(TokenBucket::Clock::now())) {
            return make_error(ErrorCode::kResourceExhausted,
                              fmt::format("{} sent more than {} StatusQuery per second",
                                          from.peer(), self->limits_.status_queries_per_second));
          }
          return self->on_message(from, address, *handshake, std::move(message));
        },
        [weak](ControlConnection& closed, const Status& reason) {
          if (auto self = weak.lock()) self->on_closed(closed, reason);
        });
  }

  Status on_message(ControlConnection& connection, const std::string& address,
                    ServerHandshake& handshake, ToCoordinator message) {
    if (!connection.handshake_done()) {
      const Hello* hello = std::get_if<Hello>(&message);
      if (hello == nullptr) {
        return make_error(ErrorCode::kProtocol, fmt::format("{} sent {} before Hello", address,
                                                            message_kind_name(message)));
      }
      const std::string peer = describe_peer(*hello, address);
      if (hello->protocol_version != kProtocolVersion) {
        refuse(connection, address,
               fmt::format("{} speaks control protocol version {}, this coordinator speaks "
                           "version {}",
                           peer, hello->protocol_version, kProtocolVersion),
               ErrorCode::kProtocol);
        return Status::ok();
      }
      const ControlKey* key = auth_.key_for(hello->role);
      if (key == nullptr) {
        if (!hello->nonce.empty()) {
          // The peer holds a key and will only trust a coordinator that proves it.
          refuse(connection, address,
                 fmt::format("{} offers to prove a {}, but this coordinator was started without "
                             "one ({}) and cannot prove it back; start the coordinator with the "
                             "key, or connect without one",
                             peer, key_name(hello->role), key_flag(hello->role)),
                 ErrorCode::kUnavailable);
          return Status::ok();
        }
        return admit(connection, peer, std::move(message));
      }
      if (hello->nonce.empty()) {
        refuse(
            connection, address,
            fmt::format("{} did not authenticate: this coordinator admits only {}s that "
                        "prove the {} (give {})",
                        peer, role_name(hello->role), key_name(hello->role), key_flag(hello->role)),
            ErrorCode::kUnavailable);
        return Status::ok();
      }
      if (hello->nonce.size() != kHandshakeNonceBytes) {
        refuse(connection, address,
               fmt::format("{} sent a handshake nonce of {} bytes; {} expected", peer,
                           hello->nonce.size(), kHandshakeNonceBytes),
               ErrorCode::kProtocol);
        return Status::ok();
      }
      RUNAHEAD_ASSIGN_OR_RETURN(std::vector<uint8_t> nonce, make_handshake_nonce());
      HelloChallenge challenge;
      challenge.nonce = nonce;
      challenge.proof = handshake_proof(*key, Prover::kCoordinator,
                                        HandshakeTranscript{.protocol_version = kProtocolVersion,
                                                            .role = hello->role,
                                                            .peer_name = hello->name,
                                                            .peer_nonce = hello->nonce,
                                                            .coordinator_nonce = nonce});
      handshake.awaiting_proof = ServerHandshake::AwaitingProof{
          std::move(*std::get_if<Hello>(&message)), std::move(nonce)};
      return connection.send(challenge);
    }
    if (std::holds_alternative<Hello>(message)) {
      return make_error(ErrorCode::kProtocol,
                        fmt::format("{} sent a second Hello", connection.peer()));
    }
    return sink_(ControlReceived<ToCoordinator>{connection.id(), std::move(message)});
  }

  // The peer's answer to HelloChallenge: admitted when it proves the key of its role.
  Status on_proof(ControlConnection& connection, const std::string& address,
                  ServerHandshake& handshake, const HelloProof& proof) {
    ServerHandshake::AwaitingProof awaiting = std::move(*handshake.awaiting_proof);
    handshake.awaiting_proof.reset();
    const Hello& hello = awaiting.hello;
    const std::string peer = describe_peer(hello, address);
    const ControlKey* key = auth_.key_for(hello.role);
    const HandshakeTranscript transcript{.protocol_version = kProtocolVersion,
                                         .role = hello.role,
                                         .peer_name = hello.name,
                                         .peer_nonce = hello.nonce,
                                         .coordinator_nonce = awaiting.coordinator_nonce};
    if (key == nullptr || !handshake_proof_matches(*key, Prover::kPeer, transcript, proof.proof)) {
      refuse(connection, address,
             fmt::format("{} failed authentication: its proof does not match this "
                         "coordinator's {} (a {} must prove the {})",
                         peer, key_name(hello.role), role_name(hello.role), key_name(hello.role)),
             ErrorCode::kUnavailable);
      return Status::ok();
    }
    logger("control")->debug("control: {} proved the {}", peer, key_name(hello.role));
    return admit(connection, peer, ToCoordinator(std::move(awaiting.hello)));
  }

  // The handshake is over on this side: the owner gets the Hello and answers it.
  Status admit(ControlConnection& connection, const std::string& peer, ToCoordinator hello) {
    connection.set_peer(peer);
    connection.set_handshake_done();
    connection.disarm_deadline();
    return sink_(ControlReceived<ToCoordinator>{connection.id(), std::move(hello)});
  }

  // Refuses a peer during the handshake: a HelloAck naming why, then the connection closes.
  // Logged, at most a few lines a minute per remote host.
  void refuse(ControlConnection& connection, const std::string& address, const std::string& reason,
              ErrorCode code) {
    refusals_.warn(address_host(address),
                   fmt::format("refusing connection {}: {}", connection.id(), reason));
    HelloAck refusal;
    refusal.accepted = false;
    refusal.reason = reason;
    Status sent = connection.send(refusal);
    (void)sent;  // the peer is closed either way
    connection.close(make_error(code, reason), /*flush=*/true);
  }

  void on_closed(ControlConnection& connection, const Status& reason) {
    {
      std::lock_guard lock(mutex_);
      connections_.erase(connection.id());
    }
    if (!connection.handshake_done()) return;  // the owner never knew it
    log_limited(*logger("control"), spdlog::level::info, "control: closed",
                "control: connection {} to {} closed: {}", connection.id(), connection.peer(),
                reason.to_string());
    Status delivered = sink_(ControlClosed{connection.id(), connection.peer(), reason});
    if (!delivered.is_ok()) {
      logger("control")->debug("control: close of {} not delivered: {}", connection.peer(),
                               delivered.to_string());
    }
  }

  asio::io_context& io_;
  asio::ip::tcp::acceptor acceptor_;
  asio::ip::tcp::endpoint local_;
  const ControlEventSink<ToCoordinator> sink_;
  const ControlLimits limits_;
  const std::shared_ptr<BufferBudget> budget_;
  const ControlAuth auth_;
  RefusalLog refusals_;
  mutable std::mutex mutex_;
  bool shut_down_ = false;
  std::unordered_map<ConnectionId, std::shared_ptr<ControlConnection>> connections_;
};

Result<std::unique_ptr<ControlServer>> ControlServer::listen(asio::io_context& io,
                                                             const std::string& address,
                                                             ControlEventSink<ToCoordinator> sink,
                                                             ControlLimits limits,
                                                             ControlAuth auth) {
  RUNAHEAD_RETURN_IF_ERROR(limits.validate());
  RUNAHEAD_ASSIGN_OR_RETURN(HostPort parsed, parse_host_port(address));
  const std::string authentication = fmt::format(
      "workers {}, clients {}{}", auth.cluster_key ? "prove the cluster key" : "unauthenticated",
      auth.client_key ? "prove the client key" : "unauthenticated",
      auth.insecure ? " (--insecure)" : "");
  auto impl = std::make_shared<Impl>(io, std::move(sink), limits, std::move(auth));
  RUNAHEAD_RETURN_IF_ERROR(impl->bind(parsed));
  impl->start_accepting();
  logger("control")->info("control: listening on {}; {}", impl->local_address(), authentication);
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

ControlServer::ControlServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

ControlServer::~ControlServer() {
  shutdown();
}

std::string ControlServer::local_address() const {
  return impl_->local_address();
}
uint16_t ControlServer::port() const {
  return impl_->port();
}

template <typename Message>
Status ControlServer::Impl::send(ConnectionId connection, const Message& message) {
  auto found = find(connection);
  if (!found) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("control connection {} is gone", connection));
  }
  return found->send(message);
}

Status ControlServer::send(ConnectionId connection, const HelloAck& message) {
  return impl_->send(connection, message);
}
Status ControlServer::send(ConnectionId connection, const ToWorker& message) {
  return impl_->send(connection, message);
}
Status ControlServer::send(ConnectionId connection, const ToClient& message) {
  return impl_->send(connection, message);
}

void ControlServer::close(ConnectionId connection, Status reason, bool flush) {
  if (auto found = impl_->find(connection)) found->close(std::move(reason), flush);
}

std::string ControlServer::peer(ConnectionId connection) const {
  auto found = impl_->find(connection);
  return found ? found->peer() : std::string();
}

size_t ControlServer::connection_count() const {
  return impl_->connection_count();
}

size_t ControlServer::buffered_bytes() const {
  return impl_->budget().used();
}

void ControlServer::shutdown() {
  impl_->shutdown();
}

}  // namespace runahead::net
