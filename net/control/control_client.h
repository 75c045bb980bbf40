// An outgoing control connection (a worker to its coordinator, a client to the coordinator):
// connects, sends Hello, and is ready once the peer answers with an accepting HelloAck. With a
// key (the cluster key of a worker, the client key of a client) the Hello carries a nonce, the
// coordinator must prove the key before this end proves it in turn (net/control/
// handshake_proof.h), and a coordinator that accepts without proving it is refused.
// Messages that arrive afterwards, and the close of the connection, go to the sink. Incoming is
// the direction this end receives (ToWorker for a worker, ToClient for a client): a message of
// any other is refused at decode and closes the connection.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <asio/io_context.hpp>

#include "core/status.h"
#include "net/control/control_events.h"
#include "net/control/control_key.h"
#include "net/control/control_limits.h"
#include "net/control/control_messages.h"

namespace runahead::net {

class ControlConnection;

template <typename Incoming>
class ControlClient {
 public:
  using ConnectCallback = std::function<void(Result<std::unique_ptr<ControlClient>>)>;

  // Connects to `address` ("host:port") and exchanges Hello/HelloAck within `timeout`.
  // `done` runs once, on a thread of `io`, with the client or with an error: kTimeout, kProtocol
  // (version mismatch, a peer that does not speak the protocol), kUnavailable (refused, with
  // the peer's reason, unreachable, or failing authentication either way).
  static void connect_async(asio::io_context& io, const std::string& address, Hello hello,
                            ControlEventSink<Incoming> sink, std::chrono::milliseconds timeout,
                            ControlLimits limits, ConnectCallback done,
                            std::optional<ControlKey> key = std::nullopt);

  // The same, waiting for the outcome; `io` must be run by another thread.
  static Result<std::unique_ptr<ControlClient>> connect(
      asio::io_context& io, const std::string& address, Hello hello,
      ControlEventSink<Incoming> sink, std::chrono::milliseconds timeout, ControlLimits limits = {},
      std::optional<ControlKey> key = std::nullopt);

  ~ControlClient();  // close()
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;

  ConnectionId id() const;
  std::string peer() const;
  const HelloAck& ack() const { return ack_; }

  // Thread-safe; as ControlConnection::send.
  Status send(const ToCoordinator& message);
  // Closes after the queued messages are written (`flush`) or at once.
  void close(bool flush = false);
  // Closes at once with `reason`, which the sink's ControlClosed carries (e.g. a peer gone
  // silent).
  void close(Status reason);

  ControlClient(std::shared_ptr<ControlConnection> connection, HelloAck ack);

 private:
  std::shared_ptr<ControlConnection> connection_;
  HelloAck ack_;
};

extern template class ControlClient<ToWorker>;
extern template class ControlClient<ToClient>;

// A worker's connection to its coordinator, and a client's.
using WorkerControlClient = ControlClient<ToWorker>;
using ClientControlClient = ControlClient<ToClient>;

}  // namespace runahead::net
