#include "net/control/control_connection.h"

#include <algorithm>
#include <atomic>

#include <fmt/format.h>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include "core/log.h"
#include "core/log_limiter.h"

namespace runahead::net {
namespace {

// A frame's buffer starts at this and doubles as the body arrives, up to its announced length:
// a peer that announces a large frame and sends nothing holds no more than this.
constexpr size_t kFirstChunkBytes = 16 * 1024;
// Larger body buffers are not kept between frames.
constexpr size_t kKeptBodyBytes = 64 * 1024;
// The watchdog looks at a connection at least this often, and at most this often.
constexpr std::chrono::milliseconds kShortestWatch{10};
constexpr std::chrono::milliseconds kLongestWatch{1000};

// Every warning here can be triggered by a peer once per connection or message: rate-limited.
constexpr std::string_view kClosedKey = "control: connection closed";

}  // namespace

ConnectionId next_connection_id() {
  static std::atomic<ConnectionId> next{1};
  return next.fetch_add(1);
}

ControlConnection::ControlConnection(asio::ip::tcp::socket socket, std::string peer,
                                     ControlLimits limits, std::shared_ptr<BufferBudget> budget)
    : id_(next_connection_id()),
      limits_(limits),
      budget_(budget ? std::move(budget)
                     : std::make_shared<BufferBudget>(limits.max_buffered_bytes)),
      socket_(std::move(socket)),
      deadline_(socket_.get_executor()),
      watchdog_(socket_.get_executor()),
      peer_(std::move(peer)) {}

ControlConnection::~ControlConnection() {
  // Whatever finish_close did not release (a connection never started or closed).
  budget_->release(outgoing_bytes_ + body_charged_);
}

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
    if (self->finished_) return;
    self->read_header();
    self->watch(kShortestWatch);
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
  const size_t bytes = frame->size();
  Status overflow;
  {
    std::lock_guard lock(mutex_);
    if (closing_ || flush_then_close_) return closed_error();
    if (outgoing_.size() >= limits_.max_outgoing_messages ||
        outgoing_bytes_ + bytes > limits_.max_outgoing_bytes) {
      overflow = make_error(
          ErrorCode::kResourceExhausted,
          fmt::format("outgoing queue to {} is full ({} messages, {} bytes; the limits are {} "
                      "messages, {} bytes): it does not read what it asked for; closing the "
                      "connection",
                      peer_, outgoing_.size(), outgoing_bytes_, limits_.max_outgoing_messages,
                      limits_.max_outgoing_bytes));
    } else if (!budget_->try_charge(bytes)) {
      overflow = make_error(
          ErrorCode::kResourceExhausted,
          fmt::format("cannot queue {} bytes to {}: the control plane's buffers hold {} of their "
                      "{} bytes; closing the connection",
                      bytes, peer_, budget_->used(), budget_->limit()));
    } else {
      outgoing_bytes_ += bytes;
      last_sent_ = Clock::now();
      outgoing_.push_back(std::move(frame).value());
    }
  }
  if (!overflow.is_ok()) {
    close(overflow);
    return overflow;
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
               self->deadline_.async_wait([self, reason = std::move(reason)](
                                              const std::error_code& error) mutable {
                 if (error || self->finished_) return;
                 warn_limited(*logger("control"), kClosedKey, "control: connection {} to {}: {}",
                              self->id_, self->peer(), reason.to_string());
                 self->finish_close(std::move(reason));
               });
             });
}

void ControlConnection::disarm_deadline() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->deadline_.cancel(); });
}

void ControlConnection::set_handshake_done() {
  handshake_done_ = true;
  last_received_ = Clock::now();
}

void ControlConnection::set_keepalive(std::vector<uint8_t> frame,
                                      std::chrono::milliseconds interval) {
  keepalive_frame_ = std::move(frame);
  keepalive_interval_ = interval;
}

void ControlConnection::watch(Clock::duration period) {
  watchdog_.expires_after(period);
  watchdog_.async_wait([self = shared_from_this()](const std::error_code& error) {
    if (error || self->finished_) return;
    self->check_timeouts();
    if (self->finished_) return;
    // Often enough that each timeout is noticed within a quarter of itself.
    std::chrono::milliseconds shortest = self->limits_.transfer_timeout;
    if (self->limits_.idle_timeout.count() > 0) {
      shortest = std::min(shortest, self->limits_.idle_timeout);
    }
    if (self->keepalive_interval_.count() > 0) {
      shortest = std::min(shortest, self->keepalive_interval_);
    }
    self->watch(std::clamp(shortest / 4, kShortestWatch, kLongestWatch));
  });
}

void ControlConnection::check_timeouts() {
  const auto now = Clock::now();
  const auto since = [&](Clock::time_point then) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(now - then);
  };
  std::optional<Status> timed_out;
  if (in_frame_ && since(frame_started_) >= limits_.transfer_timeout) {
    timed_out = make_error(
        ErrorCode::kTimeout,
        fmt::format("{} sent {} of the {} bytes of a frame in {} ms (the transfer timeout)", peer(),
                    received_bytes_, frame_bytes_, limits_.transfer_timeout.count()));
  } else if (writing_ && since(write_started_) >= limits_.transfer_timeout) {
    timed_out = make_error(ErrorCode::kTimeout,
                           fmt::format("{} read no frame sent to it for {} ms (the transfer "
                                       "timeout): it does not read",
                                       peer(), limits_.transfer_timeout.count()));
  } else if (handshake_done_ && limits_.idle_timeout.count() > 0 &&
             since(last_received_) >= limits_.idle_timeout) {
    timed_out = make_error(ErrorCode::kTimeout, fmt::format("nothing received from {} for {} ms",
                                                            peer(), limits_.idle_timeout.count()));
  }
  if (timed_out) {
    warn_limited(*logger("control"), kClosedKey, "control: closing connection {}: {}", id_,
                 timed_out->message());
    finish_close(std::move(*timed_out));
    return;
  }
  if (handshake_done_ && keepalive_interval_.count() > 0) {
    bool quiet = false;
    {
      std::lock_guard lock(mutex_);
      quiet = outgoing_.empty() && since(last_sent_) >= keepalive_interval_;
    }
    if (quiet) (void)enqueue(keepalive_frame_);  // a failure closes the connection
  }
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
      warn_limited(*logger("control"), kClosedKey, "control: connection {}: {}", id_,
                   reason.message());
      finish_close(std::move(reason));
    }
    return;
  }
  // Before the handshake the peer has proven nothing: it gets the small frame limit.
  const uint32_t limit = handshake_done_
                             ? limits_.max_frame_bytes
                             : std::min(limits_.max_frame_bytes, limits_.max_handshake_frame_bytes);
  auto length = decode_frame_header(header_, limit);
  if (!length.is_ok()) {
    warn_limited(*logger("control"), kClosedKey, "control: closing connection {} from {}{}: {}",
                 id_, peer(), handshake_done_ ? "" : " (before its handshake)",
                 length.error().message);
    finish_close(length.status());
    return;
  }
  frame_bytes_ = *length;
  received_bytes_ = 0;
  in_frame_ = true;
  frame_started_ = Clock::now();
  read_body();
}

Status ControlConnection::grow_body(size_t bytes) {
  const size_t words = (bytes + 7) / 8;
  if (body_.size() >= words) return Status::ok();
  if (body_.capacity() < words) {
    const size_t extra = words * 8 - body_charged_;
    if (!budget_->try_charge(extra)) {
      return make_error(
          ErrorCode::kResourceExhausted,
          fmt::format("a frame of {} bytes from {} needs {} more buffer bytes, but "
                      "the control plane's buffers hold {} of their {} bytes",
                      frame_bytes_, peer(), extra, budget_->used(), budget_->limit()));
    }
    body_charged_ += extra;
    body_.reserve(words);
  }
  body_.resize(words);
  return Status::ok();
}

void ControlConnection::release_body() {
  body_ = std::vector<uint64_t>();
  budget_->release(body_charged_);
  body_charged_ = 0;
}

void ControlConnection::read_body() {
  // Doubling with what has arrived: the buffer is never more than twice the bytes received.
  const size_t target = std::min<size_t>(
      frame_bytes_, std::max({kFirstChunkBytes, 2 * received_bytes_, body_.size() * 8}));
  if (Status grown = grow_body(target); !grown.is_ok()) {
    warn_limited(*logger("control"), kClosedKey, "control: closing connection {}: {}", id_,
                 grown.message());
    finish_close(std::move(grown));
    return;
  }
  // Whatever has arrived, so that progress (and the buffer's growth) follows the bytes.
  auto* bytes = reinterpret_cast<uint8_t*>(body_.data());
  socket_.async_read_some(asio::buffer(bytes + received_bytes_, target - received_bytes_),
                          [self = shared_from_this()](const std::error_code& error, size_t read) {
                            self->on_body(error, read);
                          });
}

void ControlConnection::on_body(const std::error_code& error, size_t bytes) {
  if (finished_) return;
  received_bytes_ += bytes;
  if (error) {
    Status reason =
        make_error(ErrorCode::kProtocol,
                   fmt::format("{} sent a truncated frame: {} of {} body bytes before {}", peer(),
                               received_bytes_, frame_bytes_,
                               error == asio::error::eof ? "closing" : error.message()));
    warn_limited(*logger("control"), kClosedKey, "control: closing connection {}: {}", id_,
                 reason.message());
    finish_close(std::move(reason));
    return;
  }
  if (received_bytes_ < frame_bytes_) {
    read_body();
    return;
  }
  in_frame_ = false;
  last_received_ = Clock::now();
  Status handled = on_frame_
                       ? on_frame_(*this, std::span<const uint64_t>(body_.data(), frame_bytes_ / 8))
                       : Status::ok();
  if (body_charged_ > kKeptBodyBytes) release_body();
  if (finished_) return;
  if (!handled.is_ok()) {
    warn_limited(*logger("control"), kClosedKey, "control: closing connection {} from {}: {}", id_,
                 peer(), handled.to_string());
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
  write_started_ = Clock::now();
  asio::async_write(
      socket_, next, [self = shared_from_this()](const std::error_code& error, size_t) {
        self->writing_ = false;
        if (self->finished_) return;
        if (error) {
          Status reason =
              make_error(ErrorCode::kUnavailable,
                         fmt::format("writing to {} failed: {}", self->peer(), error.message()));
          warn_limited(*logger("control"), kClosedKey, "control: connection {}: {}", self->id_,
                       reason.message());
          self->finish_close(std::move(reason));
          return;
        }
        {
          std::lock_guard lock(self->mutex_);
          const size_t written = self->outgoing_.front().size();
          self->outgoing_.pop_front();
          self->outgoing_bytes_ -= written;
          self->budget_->release(written);
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
    const size_t kept = writing_ ? 1 : 0;
    while (outgoing_.size() > kept) outgoing_.pop_back();
    budget_->release(outgoing_bytes_);
    outgoing_bytes_ = 0;
  }
  std::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  deadline_.cancel();
  watchdog_.cancel();
  release_body();
  keepalive_frame_ = std::vector<uint8_t>();
  on_frame_ = nullptr;
  // Moved out first: the handler may drop the last outside reference to this connection.
  CloseHandler on_close = std::move(on_close_);
  on_close_ = nullptr;
  if (on_close) on_close(*this, reason);
}

}  // namespace runahead::net
