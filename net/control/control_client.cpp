#include "net/control/control_client.h"

#include <future>

#include <fmt/format.h>
#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "core/log.h"
#include "net/control/control_connection.h"
#include "net/control/handshake_proof.h"
#include "net/control/host_port.h"

namespace runahead::net {
namespace {

// One connection attempt; every handler runs on its strand (shared with the connection).
template <typename Incoming>
class ConnectAttempt : public std::enable_shared_from_this<ConnectAttempt<Incoming>> {
 public:
  ConnectAttempt(asio::io_context& io, HostPort address, Hello hello,
                 ControlEventSink<Incoming> sink, ControlLimits limits,
                 typename ControlClient<Incoming>::ConnectCallback done,
                 std::optional<ControlKey> key)
      : strand_(asio::make_strand(io)),
        resolver_(strand_),
        socket_(strand_),
        timer_(strand_),
        address_(std::move(address)),
        hello_(std::move(hello)),
        sink_(std::move(sink)),
        limits_(limits),
        key_(std::move(key)),
        done_(std::move(done)) {}

  void start(std::chrono::milliseconds timeout) {
    asio::post(strand_, [self = this->shared_from_this(), timeout] {
      self->timer_.expires_after(timeout);
      self->timer_.async_wait([self, timeout](const std::error_code& error) {
        if (error) return;
        self->fail(make_error(ErrorCode::kTimeout,
                              fmt::format("connecting to {} timed out after {} ms",
                                          self->address_.to_string(), timeout.count())));
      });
      self->resolver_.async_resolve(
          self->address_.host, std::to_string(self->address_.port),
          [self](const std::error_code& error, asio::ip::tcp::resolver::results_type results) {
            self->on_resolved(error, std::move(results));
          });
    });
  }

 private:
  void on_resolved(const std::error_code& error, asio::ip::tcp::resolver::results_type results) {
    if (finished_) return;
    if (error) {
      fail(make_error(ErrorCode::kUnavailable,
                      fmt::format("cannot resolve {}: {}", address_.to_string(), error.message())));
      return;
    }
    asio::async_connect(socket_, results,
                        [self = this->shared_from_this()](const std::error_code& connect_error,
                                                          const asio::ip::tcp::endpoint&) {
                          self->on_connected(connect_error);
                        });
  }

  void on_connected(const std::error_code& error) {
    if (finished_) return;
    if (error) {
      fail(make_error(ErrorCode::kUnavailable, fmt::format("cannot connect to {}: {}",
                                                           address_.to_string(), error.message())));
      return;
    }
    std::error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    apply_tcp_keepalive(socket_, limits_.keepalive);
    auto connection =
        std::make_shared<ControlConnection>(std::move(socket_), address_.to_string(), limits_);
    connection_ = connection;
    auto self = this->shared_from_this();
    connection->start(
        [self](ControlConnection& from, std::span<const uint64_t> body) -> Status {
          return self->on_frame(from, body);
        },
        [self](ControlConnection& closed, const Status& reason) {
          self->on_closed(closed, reason);
        });
    if (key_) {
      auto nonce = make_handshake_nonce();
      if (!nonce) {
        fail(nonce.error());
        return;
      }
      hello_.nonce = std::move(nonce).value();
    }
    Status sent = connection->send(ToCoordinator(hello_));
    if (!sent.is_ok()) fail(sent);
  }

  Status on_frame(ControlConnection& connection, std::span<const uint64_t> body) {
    if (connection.handshake_done()) {
      RUNAHEAD_ASSIGN_OR_RETURN(Incoming message,
                                decode_message<Incoming>(body, connection.limits()));
      logger("control")->trace("control: {} from {}", message_kind_name(message),
                               connection.peer());
      return sink_(ControlReceived<Incoming>{connection.id(), std::move(message)});
    }
    if (finished_) return make_error(ErrorCode::kCancelled, "connect attempt abandoned");
    if (proved_) {
      // After this end's proof only the answer may come.
      auto ack = decode_message<HelloAck>(body, connection.limits());
      if (!ack) return failed(ErrorCode::kProtocol, ack.error().message);
      return on_ack(connection, *ack);
    }
    auto answer = decode_message<HandshakeAnswer>(body, connection.limits());
    if (!answer) {
      return make_error(ErrorCode::kProtocol,
                        fmt::format("{} answered Hello with something else: {}",
                                    address_.to_string(), answer.error().message));
    }
    if (auto* challenge = std::get_if<HelloChallenge>(&answer.value())) {
      return on_challenge(connection, *challenge);
    }
    return on_ack(connection, std::get<HelloAck>(answer.value()));
  }

  // Fails the attempt with `code` and `reason`, and returns that error (it closes the
  // connection).
  Status failed(ErrorCode code, std::string reason) {
    fail(make_error(code, reason));
    return make_error(code, std::move(reason));
  }

  const char* key_flag() const {
    return hello_.role == PeerRole::kWorker ? "--cluster-key-file" : "--client-key-file";
  }

  // The coordinator proves the key first; this end proves it back only then.
  Status on_challenge(ControlConnection& connection, const HelloChallenge& challenge) {
    if (!key_) {
      return failed(ErrorCode::kUnavailable,
                    fmt::format("{} asks for authentication and this end has no key: give {}",
                                address_.to_string(), key_flag()));
    }
    const HandshakeTranscript transcript{.protocol_version = hello_.protocol_version,
                                         .role = hello_.role,
                                         .peer_name = hello_.name,
                                         .peer_nonce = hello_.nonce,
                                         .coordinator_nonce = challenge.nonce};
    if (challenge.nonce.size() != kHandshakeNonceBytes ||
        !handshake_proof_matches(*key_, Prover::kCoordinator, transcript, challenge.proof)) {
      return failed(ErrorCode::kUnavailable,
                    fmt::format("{} did not prove the key in {}: it holds another key, or is not "
                                "the coordinator",
                                address_.to_string(), key_->source()));
    }
    proved_ = true;
    return connection.send(HelloProof{handshake_proof(*key_, Prover::kPeer, transcript)});
  }

  Status on_ack(ControlConnection& connection, const HelloAck& received) {
    const HelloAck* ack = &received;
    if (ack->protocol_version != hello_.protocol_version) {
      return failed(
          ErrorCode::kProtocol,
          fmt::format("{} speaks control protocol version {}, this end speaks version {}{}",
                      address_.to_string(), ack->protocol_version, hello_.protocol_version,
                      ack->accepted ? std::string() : ": " + ack->reason));
    }
    if (!ack->accepted) {
      return failed(ErrorCode::kUnavailable, fmt::format("{} refused the connection: {}",
                                                         address_.to_string(), ack->reason));
    }
    if (key_ && !proved_) {
      return failed(ErrorCode::kUnavailable,
                    fmt::format("{} accepted without proving the key in {}: it runs without "
                                "authentication, or is not the coordinator",
                                address_.to_string(), key_->source()));
    }
    connection.set_handshake_done();
    if (limits_.keepalive_interval.count() > 0) {
      auto keepalive = encode_frame(ToCoordinator(Heartbeat{}), limits_);
      if (keepalive)
        connection.set_keepalive(std::move(keepalive).value(), limits_.keepalive_interval);
    }
    finished_ = true;
    timer_.cancel();
    auto client = std::make_unique<ControlClient<Incoming>>(connection.shared_from_this(), *ack);
    auto done = std::move(done_);
    done(std::move(client));
    return Status::ok();
  }

  void on_closed(ControlConnection& connection, const Status& reason) {
    if (connection.handshake_done()) {
      Status delivered = sink_(ControlClosed{connection.id(), connection.peer(), reason});
      if (!delivered.is_ok()) {
        logger("control")->debug("control: close of {} not delivered: {}", connection.peer(),
                                 delivered.to_string());
      }
      return;
    }
    fail(make_error(reason.code(), fmt::format("connection to {} closed during the handshake: {}",
                                               address_.to_string(), reason.message())));
  }

  void fail(Status error) {
    if (finished_) return;
    finished_ = true;
    timer_.cancel();
    resolver_.cancel();
    std::error_code ignored;
    socket_.close(ignored);
    if (auto connection = connection_.lock()) connection->close(error);
    auto done = std::move(done_);
    done(error.error());
  }

  asio::strand<asio::io_context::executor_type> strand_;
  asio::ip::tcp::resolver resolver_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  const HostPort address_;
  Hello hello_;  // its nonce is drawn on connecting
  const ControlEventSink<Incoming> sink_;
  const ControlLimits limits_;
  const std::optional<ControlKey> key_;
  bool proved_ = false;  // this end sent its HelloProof
  typename ControlClient<Incoming>::ConnectCallback done_;
  std::weak_ptr<ControlConnection> connection_;
  bool finished_ = false;
};

}  // namespace

template <typename Incoming>
void ControlClient<Incoming>::connect_async(asio::io_context& io, const std::string& address,
                                            Hello hello, ControlEventSink<Incoming> sink,
                                            std::chrono::milliseconds timeout, ControlLimits limits,
                                            ConnectCallback done, std::optional<ControlKey> key) {
  Status valid = limits.validate();
  auto parsed = parse_host_port(address);
  if (!valid.is_ok() || !parsed.is_ok()) {
    Error error = valid.is_ok() ? parsed.error() : valid.error();
    asio::post(io, [done = std::move(done), error = std::move(error)] { done(error); });
    return;
  }
  auto attempt = std::make_shared<ConnectAttempt<Incoming>>(
      io, std::move(parsed).value(), std::move(hello), std::move(sink), limits, std::move(done),
      std::move(key));
  attempt->start(timeout);
}

template <typename Incoming>
Result<std::unique_ptr<ControlClient<Incoming>>> ControlClient<Incoming>::connect(
    asio::io_context& io, const std::string& address, Hello hello, ControlEventSink<Incoming> sink,
    std::chrono::milliseconds timeout, ControlLimits limits, std::optional<ControlKey> key) {
  if (io.get_executor().running_in_this_thread()) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("ControlClient::connect to {} called on a thread of its own "
                                  "io_context: it would wait forever; use connect_async",
                                  address));
  }
  auto outcome = std::make_shared<std::promise<Result<std::unique_ptr<ControlClient>>>>();
  auto future = outcome->get_future();
  connect_async(
      io, address, std::move(hello), std::move(sink), timeout, limits,
      [outcome](Result<std::unique_ptr<ControlClient>> result) {
        outcome->set_value(std::move(result));
      },
      std::move(key));
  return future.get();
}

template <typename Incoming>
ControlClient<Incoming>::ControlClient(std::shared_ptr<ControlConnection> connection, HelloAck ack)
    : connection_(std::move(connection)), ack_(std::move(ack)) {}

template <typename Incoming>
ControlClient<Incoming>::~ControlClient() {
  close();
}

template <typename Incoming>
ConnectionId ControlClient<Incoming>::id() const {
  return connection_->id();
}
template <typename Incoming>
std::string ControlClient<Incoming>::peer() const {
  return connection_->peer();
}

template <typename Incoming>
Status ControlClient<Incoming>::send(const ToCoordinator& message) {
  return connection_->send(message);
}

template <typename Incoming>
void ControlClient<Incoming>::close(bool flush) {
  connection_->close(make_error(ErrorCode::kCancelled, "closed locally"), flush);
}

template <typename Incoming>
void ControlClient<Incoming>::close(Status reason) {
  connection_->close(std::move(reason));
}

template class ControlClient<ToWorker>;
template class ControlClient<ToClient>;

}  // namespace runahead::net
