// One framed control connection over TCP: reads frames under the limits and hands each body to
// its owner, which decodes the direction it receives; encodes and queues outgoing messages up
// to a limit. All socket work runs on the connection's strand, so send() and close() may be
// called from any thread. Owners are ControlServer (accepted connections) and ControlClient
// (outgoing ones).
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
  ControlConnection(asio::ip::tcp::socket socket, std::string peer, ControlLimits limits);
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
  // (or closing), kResourceExhausted when the outgoing queue holds max_outgoing_messages,
  // kInvalidArgument when it exceeds the frame limit.
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
  // handshake starts the idle watchdog (ControlLimits::idle_timeout).
  bool handshake_done() const { return handshake_done_; }
  void set_handshake_done();

 private:
  Status enqueue(Result<std::vector<uint8_t>> frame);
  void read_header();
  void on_header(const std::error_code& error, size_t bytes);
  void on_body(const std::error_code& error, size_t bytes, uint32_t length);
  void write_next();
  void watch_idle(std::chrono::steady_clock::duration wait);
  void finish_close(Status reason);
  Status closed_error() const;

  const ConnectionId id_;
  const ControlLimits limits_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer deadline_;
  asio::steady_timer idle_;

  // Strand-only state.
  FrameHandler on_frame_;
  CloseHandler on_close_;
  FrameHeaderBytes header_{};
  std::vector<uint64_t> body_;
  bool writing_ = false;
  bool finished_ = false;
  bool handshake_done_ = false;
  std::chrono::steady_clock::time_point last_received_;

  // Shared with send() callers.
  mutable std::mutex mutex_;
  std::string peer_;
  std::deque<std::vector<uint8_t>> outgoing_;
  bool closing_ = false;
  std::optional<Status> flush_then_close_;
};

}  // namespace runahead::net
