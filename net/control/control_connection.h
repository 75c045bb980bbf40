// One framed control connection over TCP: reads frames under the limits and hands each body to
// its owner, which decodes the direction it receives; encodes and queues outgoing messages up
// to a limit. All socket work runs on the connection's strand, so send() and close() may be
// called from any thread. Owners are ControlServer (accepted connections) and ControlClient
// (outgoing ones).
//
// Memory a peer can make it hold is bounded: a frame's buffer grows as its bytes arrive (not to
// the announced length), frames before the handshake are small, and every buffered byte in
// either direction is charged to a BufferBudget shared by the server's connections. A watchdog
// closes connections that go silent after the handshake, trickle a frame, or stop reading.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include "core/status.h"
#include "net/control/buffer_budget.h"
#include "net/control/control_codec.h"
#include "net/control/control_events.h"
#include "net/control/control_limits.h"
#include "net/control/frame.h"

namespace runahead::net {

// A process-wide unique id for a new connection.
ConnectionId next_connection_id();

class ControlConnection : public std::enable_shared_from_this<ControlConnection> {
 public:
  // Both run on the strand. The frame handler gets each frame's body (whole words, valid for
  // the call only); its error (a message it cannot decode or take) closes the connection with
  // that reason.
  using FrameHandler = std::function<Status(ControlConnection&, std::span<const uint64_t> body)>;
  using CloseHandler = std::function<void(ControlConnection&, const Status&)>;

  // `socket` must be bound to a strand (asio::make_strand): its executor serializes handlers.
  // `budget` is shared by the connections whose buffers it bounds; none: one of
  // limits.max_buffered_bytes for this connection alone.
  ControlConnection(asio::ip::tcp::socket socket, std::string peer, ControlLimits limits,
                    std::shared_ptr<BufferBudget> budget = nullptr);
  ~ControlConnection();
  ControlConnection(const ControlConnection&) = delete;
  ControlConnection& operator=(const ControlConnection&) = delete;

  ConnectionId id() const { return id_; }
  std::string peer() const;
  void set_peer(std::string peer);

  // Starts reading. The close handler runs exactly once, when the connection closes for any
  // reason; neither handler runs after it.
  void start(FrameHandler on_frame, CloseHandler on_close);

  // Queues a message (ToCoordinator, ToWorker, ToClient or HelloAck). kUnavailable once closed
  // (or closing), kInvalidArgument when it exceeds the frame limit, kResourceExhausted when the
  // outgoing queue holds max_outgoing_messages or max_outgoing_bytes, or the budget is spent:
  // the connection is then closed, since its peer does not read what it asked for.
  template <typename Message>
  Status send(const Message& message) {
    return enqueue(encode_frame(message, limits_));
  }

  const ControlLimits& limits() const { return limits_; }

  // Closes now, or after the queued messages are written (`flush`).
  void close(Status reason, bool flush = false);

  // Closes with `reason` unless disarm_deadline() is called within `after`.
  void arm_deadline(std::chrono::milliseconds after, Status reason);
  void disarm_deadline();

  // Handshake state, kept by the owner; read and written on the strand only. Completing the
  // handshake lifts the frame limit to max_frame_bytes and starts the idle timeout
  // (ControlLimits::idle_timeout).
  bool handshake_done() const { return handshake_done_; }
  void set_handshake_done();

  // Sends `frame` (an encoded Heartbeat) whenever nothing was sent for `interval`; on the
  // strand. For connecting ends, to stay within a server's idle timeout.
  void set_keepalive(std::vector<uint8_t> frame, std::chrono::milliseconds interval);

 private:
  Status enqueue(Result<std::vector<uint8_t>> frame);
  using Clock = std::chrono::steady_clock;

  void read_header();
  void on_header(const std::error_code& error, size_t bytes);
  void read_body();
  void on_body(const std::error_code& error, size_t bytes);
  Status grow_body(size_t bytes);
  void release_body();
  void write_next();
  void watch(Clock::duration period);
  void check_timeouts();
  void finish_close(Status reason);
  Status closed_error() const;

  const ConnectionId id_;
  const ControlLimits limits_;
  const std::shared_ptr<BufferBudget> budget_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer deadline_;
  asio::steady_timer watchdog_;

  // Strand-only state.
  FrameHandler on_frame_;
  CloseHandler on_close_;
  FrameHeaderBytes header_{};
  std::vector<uint64_t> body_;
  size_t body_charged_ = 0;  // bytes of body_ charged to the budget
  uint32_t frame_bytes_ = 0;
  size_t received_bytes_ = 0;
  bool in_frame_ = false;
  Clock::time_point frame_started_;
  bool writing_ = false;
  Clock::time_point write_started_;
  bool finished_ = false;
  bool handshake_done_ = false;
  Clock::time_point last_received_;
  std::vector<uint8_t> keepalive_frame_;
  std::chrono::milliseconds keepalive_interval_{0};

  // Shared with send() callers.
  mutable std::mutex mutex_;
  std::string peer_;
  std::deque<std::vector<uint8_t>> outgoing_;
  size_t outgoing_bytes_ = 0;  // charged to the budget
  Clock::time_point last_sent_;
  bool closing_ = false;
  std::optional<Status> flush_then_close_;
};

}  // namespace runahead::net
