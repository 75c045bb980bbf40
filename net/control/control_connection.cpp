#include "net/control/control_connection.h"

#include <atomic>

#include <fmt/format.h>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include "core/log.h"

namespace runahead::net {
namespace {

// Large body buffers are not kept between frames.
constexpr size_t kKeptBodyWords = 8 * 1024;

}  // namespace

ConnectionId next_connection_id() {
  static std::atomic<ConnectionId> next{1};
  return next.fetch_add(1);
}

ControlConnection::ControlConnection(asio::ip::tcp::socket socket, std::string peer,
                                     ControlLimits limits)
    : id_(next_connection_id()),
      limits_(limits),
      socket_(std::move(socket)),
      deadline_(socket_.get_executor()),
      idle_(socket_.get_executor()),
      peer_(std::move(peer)) {}

ControlConnection::~ControlConnection() = default;

std::string ControlConnection::peer() const {
  std::lock_guard lock(mutex_);
  return peer_;
}

void ControlConnection::set_peer(std::string peer) {
  std::lock_guard lock(mutex_);
  peer_ = std::move(peer);
}

void ControlConnection::start(FrameHandler on_frame, CloseHandler on_close) {
  asio::post(socket_.get_executor(), [self = shared_from_this(), on_frame = std::move(on_frame),
                                      on_close = std::move(on_close)]() mutable {
    self->on_frame_ = std::move(on_frame);
    self->on_close_ = std::move(on_close);
    if (!self->finished_) self->read_header();
  });
}

Status ControlConnection::closed_error() const {
  return make_error(ErrorCode::kUnavailable,
                    fmt::format("control connection {} to {} is closed", id_, peer_));
}

Status ControlConnection::enqueue(Result<std::vector<uint8_t>> frame) {
  if (!frame.is_ok()) {
    return make_error(frame.error().code,
                      fmt::format("cannot send to {}: {}", peer(), frame.error().message));
  }
  {
    std::lock_guard lock(mutex_);
    if (closing_ || flush_then_close_) return closed_error();
    if (outgoing_.size() >= limits_.max_outgoing_messages) {
      return make_error(ErrorCode::kResourceExhausted,
                        fmt::format("outgoing queue to {} is full ({} messages)", peer_,
                                    limits_.max_outgoing_messages));
    }
    outgoing_.push_back(std::move(frame).value());
  }
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->write_next(); });
  return Status::ok();
}

void ControlConnection::close(Status reason, bool flush) {
  {
    std::lock_guard lock(mutex_);
    if (closing_) return;
    if (!flush) {
      closing_ = true;
    } else if (flush_then_close_) {
      return;  // already closing after the flush
    } else {
      flush_then_close_ = reason;
    }
  }
  if (!flush) {
    asio::post(socket_.get_executor(), [self = shared_from_this(), reason = std::move(reason)]() {
      self->finish_close(reason);
    });
    return;
  }
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->write_next(); });
  // A peer that does not read must not hold the connection open forever.
  arm_deadline(limits_.handshake_timeout, std::move(reason));
}

void ControlConnection::arm_deadline(std::chrono::milliseconds after, Status reason) {
  asio::post(socket_.get_executor(),
             [self = shared_from_this(), after, reason = std::move(reason)]() mutable {
               if (self->finished_) return;
               self->deadline_.expires_after(after);
               self->deadline_.async_wait(
                   [self, reason = std::move(reason)](const std::error_code& error) mutable {
                     if (error || self->finished_) return;
                     logger("control")->warn("control: connection {} to {}: {}", self->id_,
                                             self->peer(), reason.to_string());
                     self->finish_close(std::move(reason));
                   });
             });
}

void ControlConnection::disarm_deadline() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->deadline_.cancel(); });
}

void ControlConnection::set_handshake_done() {
  handshake_done_ = true;
  last_received_ = std::chrono::steady_clock::now();
  if (limits_.idle_timeout.count() > 0) watch_idle(limits_.idle_timeout);
}

void ControlConnection::watch_idle(std::chrono::steady_clock::duration wait) {
  idle_.expires_after(wait);
  idle_.async_wait([self = shared_from_this()](const std::error_code& error) {
    if (error || self->finished_) return;
    const auto silent = std::chrono::steady_clock::now() - self->last_received_;
    if (silent < self->limits_.idle_timeout) {
      self->watch_idle(self->limits_.idle_timeout - silent);
      return;
    }
    Status reason = make_error(ErrorCode::kTimeout,
                               fmt::format("nothing received from {} for {} ms", self->peer(),
                                           self->limits_.idle_timeout.count()));
    logger("control")->warn("control: closing connection {}: {}", self->id_, reason.message());
    self->finish_close(std::move(reason));
  });
}

void ControlConnection::read_header() {
  asio::async_read(socket_, asio::buffer(header_),
                   [self = shared_from_this()](const std::error_code& error, size_t bytes) {
                     self->on_header(error, bytes);
                   });
}

void ControlConnection::on_header(const std::error_code& error, size_t bytes) {
  if (finished_) return;
  if (error) {
    if (error == asio::error::eof && bytes == 0) {
      logger("control")->debug("control: {} closed connection {}", peer(), id_);
      finish_close(
          make_error(ErrorCode::kUnavailable, fmt::format("{} closed the connection", peer())));
    } else {
      Status reason =
          make_error(ErrorCode::kUnavailable,
                     fmt::format("reading from {} failed after {} of {} header bytes: {}", peer(),
                                 bytes, kFrameHeaderBytes, error.message()));
      logger("control")->warn("control: connection {}: {}", id_, reason.message());
      finish_close(std::move(reason));
    }
    return;
  }
  auto length = decode_frame_header(header_, limits_.max_frame_bytes);
  if (!length.is_ok()) {
    logger("control")->warn("control: closing connection {} from {}: {}", id_, peer(),
                            length.error().message);
    finish_close(length.status());
    return;
  }
  // Allocated only now that the length has passed the limit.
  body_.resize(*length / 8);
  const uint32_t body_bytes = *length;
  asio::async_read(socket_, asio::buffer(body_.data(), body_bytes),
                   [self = shared_from_this(), body_bytes](const std::error_code& read_error,
                                                           size_t read_bytes) {
                     self->on_body(read_error, read_bytes, body_bytes);
                   });
}

void ControlConnection::on_body(const std::error_code& error, size_t bytes, uint32_t length) {
  if (finished_) return;
  if (error) {
    Status reason = make_error(
        ErrorCode::kProtocol,
        fmt::format("{} sent a truncated frame: {} of {} body bytes before {}", peer(), bytes,
                    length, error == asio::error::eof ? "closing" : error.message()));
    logger("control")->warn("control: closing connection {}: {}", id_, reason.message());
    finish_close(std::move(reason));
    return;
  }
  last_received_ = std::chrono::steady_clock::now();
  Status handled = on_frame_ ? on_frame_(*this, body_) : Status::ok();
  if (body_.capacity() > kKeptBodyWords) {
    body_ = std::vector<uint64_t>();
  }
  if (finished_) return;
  if (!handled.is_ok()) {
    logger("control")->warn("control: closing connection {} from {}: {}", id_, peer(),
                            handled.to_string());
    finish_close(std::move(handled));
    return;
  }
  read_header();
}

void ControlConnection::write_next() {
  if (writing_ || finished_) return;
  asio::const_buffer next;
  {
    std::lock_guard lock(mutex_);
    if (outgoing_.empty()) {
      if (flush_then_close_) {
        Status reason = std::move(*flush_then_close_);
        closing_ = true;
        // Unlocked below: finish_close takes the mutex.
        asio::post(socket_.get_executor(),
                   [self = shared_from_this(), reason = std::move(reason)]() mutable {
                     self->finish_close(std::move(reason));
                   });
      }
      return;
    }
    // A deque keeps references to its elements valid while others are pushed.
    next = asio::buffer(outgoing_.front());
  }
  writing_ = true;
  asio::async_write(
      socket_, next, [self = shared_from_this()](const std::error_code& error, size_t) {
        self->writing_ = false;
        if (self->finished_) return;
        if (error) {
          Status reason =
              make_error(ErrorCode::kUnavailable,
                         fmt::format("writing to {} failed: {}", self->peer(), error.message()));
          logger("control")->warn("control: connection {}: {}", self->id_, reason.message());
          self->finish_close(std::move(reason));
          return;
        }
        {
          std::lock_guard lock(self->mutex_);
          self->outgoing_.pop_front();
        }
        self->write_next();
      });
}

void ControlConnection::finish_close(Status reason) {
  if (finished_) return;
  finished_ = true;
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
    // A write in flight still points at the front frame until its handler runs.
    if (!writing_) outgoing_.clear();
  }
  std::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  deadline_.cancel();
  idle_.cancel();
  body_ = std::vector<uint64_t>();
  on_frame_ = nullptr;
  // Moved out first: the handler may drop the last outside reference to this connection.
  CloseHandler on_close = std::move(on_close_);
  on_close_ = nullptr;
  if (on_close) on_close(*this, reason);
}

}  // namespace runahead::net
