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
#include "net/control/host_port.h"

namespace runahead::net {
namespace {

// One connection attempt; every handler runs on its strand (shared with the connection).
class ConnectAttempt : public std::enable_shared_from_this<ConnectAttempt> {
 public:
  ConnectAttempt(asio::io_context& io, HostPort address, Hello hello, ControlEventSink sink,
                 ControlLimits limits, ControlClient::ConnectCallback done)
      : strand_(asio::make_strand(io)),
        resolver_(strand_),
        socket_(strand_),
        timer_(strand_),
        address_(std::move(address)),
        hello_(std::move(hello)),
        sink_(std::move(sink)),
        limits_(limits),
        done_(std::move(done)) {}

  void start(std::chrono::milliseconds timeout) {
    asio::post(strand_, [self = shared_from_this(), timeout] {
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
                        [self = shared_from_this()](const std::error_code& connect_error,
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
    auto connection =
        std::make_shared<ControlConnection>(std::move(socket_), address_.to_string(), limits_);
    connection_ = connection;
    auto self = shared_from_this();
    connection->start(
        [self](ControlConnection& from, ControlMessage message) -> Status {
          return self->on_message(from, std::move(message));
        },
        [self](ControlConnection& closed, const Status& reason) {
          self->on_closed(closed, reason);
        });
    Status sent = connection->send(hello_);
    if (!sent.is_ok()) fail(sent);
  }

  Status on_message(ControlConnection& connection, ControlMessage message) {
    if (connection.handshake_done()) {
      return sink_(ControlReceived{connection.id(), std::move(message)});
    }
    if (finished_) return make_error(ErrorCode::kCancelled, "connect attempt abandoned");
    const HelloAck* ack = std::get_if<HelloAck>(&message);
    if (ack == nullptr) {
      return make_error(ErrorCode::kProtocol,
                        fmt::format("{} answered Hello with {}", address_.to_string(),
                                    message_kind_name(message)));
    }
    if (ack->protocol_version != hello_.protocol_version) {
      std::string reason =
          fmt::format("{} speaks control protocol version {}, this end speaks version {}{}",
                      address_.to_string(), ack->protocol_version, hello_.protocol_version,
                      ack->accepted ? std::string() : ": " + ack->reason);
      fail(make_error(ErrorCode::kProtocol, reason));
      return make_error(ErrorCode::kProtocol, reason);
    }
    if (!ack->accepted) {
      std::string reason =
          fmt::format("{} refused the connection: {}", address_.to_string(), ack->reason);
      fail(make_error(ErrorCode::kUnavailable, reason));
      return make_error(ErrorCode::kUnavailable, reason);
    }
    connection.set_handshake_done();
    finished_ = true;
    timer_.cancel();
    auto client = std::make_unique<ControlClient>(connection.shared_from_this(), *ack);
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
  const Hello hello_;
  const ControlEventSink sink_;
  const ControlLimits limits_;
  ControlClient::ConnectCallback done_;
  std::weak_ptr<ControlConnection> connection_;
  bool finished_ = false;
};

}  // namespace

void ControlClient::connect_async(asio::io_context& io, const std::string& address, Hello hello,
                                  ControlEventSink sink, std::chrono::milliseconds timeout,
                                  ControlLimits limits, ConnectCallback done) {
  Status valid = limits.validate();
  auto parsed = parse_host_port(address);
  if (!valid.is_ok() || !parsed.is_ok()) {
    Error error = valid.is_ok() ? parsed.error() : valid.error();
    asio::post(io, [done = std::move(done), error = std::move(error)] { done(error); });
    return;
  }
  auto attempt = std::make_shared<ConnectAttempt>(io, std::move(parsed).value(), std::move(hello),
                                                  std::move(sink), limits, std::move(done));
  attempt->start(timeout);
}

Result<std::unique_ptr<ControlClient>> ControlClient::connect(asio::io_context& io,
                                                              const std::string& address,
                                                              Hello hello, ControlEventSink sink,
                                                              std::chrono::milliseconds timeout,
                                                              ControlLimits limits) {
  if (io.get_executor().running_in_this_thread()) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("ControlClient::connect to {} called on a thread of its own "
                                  "io_context: it would wait forever; use connect_async",
                                  address));
  }
  auto outcome = std::make_shared<std::promise<Result<std::unique_ptr<ControlClient>>>>();
  auto future = outcome->get_future();
  connect_async(io, address, std::move(hello), std::move(sink), timeout, limits,
                [outcome](Result<std::unique_ptr<ControlClient>> result) {
                  outcome->set_value(std::move(result));
                });
  return future.get();
}

ControlClient::ControlClient(std::shared_ptr<ControlConnection> connection, HelloAck ack)
    : connection_(std::move(connection)), ack_(std::move(ack)) {}

ControlClient::~ControlClient() {
  close();
}

ConnectionId ControlClient::id() const {
  return connection_->id();
}
std::string ControlClient::peer() const {
  return connection_->peer();
}

Status ControlClient::send(const ControlMessage& message) {
  return connection_->send(message);
}

void ControlClient::close(bool flush) {
  connection_->close(make_error(ErrorCode::kCancelled, "closed locally"), flush);
}

}  // namespace runahead::net
