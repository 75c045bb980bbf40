// The coordinator's end of the control plane: accepts connections and hands their messages (to
// the coordinator: anything else is refused at decode and closes the connection) to an owner,
// normally an actor, through deliver_to(). Each connection must begin with Hello: a different
// protocol version is answered with a refusing HelloAck and closed by the server itself. Where
// the auth holds the key of the peer's role, the server then challenges the peer
// (net/control/handshake_proof.h) and refuses it the same way unless it proves that key. Only
// then is the Hello delivered, and the owner answers with HelloAck (accepting or refusing the
// peer), then sends ToWorker or ToClient messages as the peer's role asks.
#pragma once

#include <memory>
#include <string>

#include <asio/io_context.hpp>

#include "core/status.h"
#include "net/control/control_auth.h"
#include "net/control/control_events.h"
#include "net/control/control_limits.h"
#include "net/control/control_messages.h"

namespace runahead::net {

class ControlServer {
 public:
  // Binds `address` ("host:port"; port 0 picks a free port) and starts accepting on `io`.
  // kInvalidArgument when `auth` does not allow that address (ControlAuth::check_listen).
  static Result<std::unique_ptr<ControlServer>> listen(asio::io_context& io,
                                                       const std::string& address,
                                                       ControlEventSink<ToCoordinator> sink,
                                                       ControlLimits limits = {},
                                                       ControlAuth auth = {});
  ~ControlServer();  // shutdown()
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // The bound address, with the port actually chosen.
  std::string local_address() const;
  uint16_t port() const;

  // Thread-safe. kNotFound for a connection that is gone, else as ControlConnection::send.
  Status send(ConnectionId connection, const HelloAck& message);
  Status send(ConnectionId connection, const ToWorker& message);
  Status send(ConnectionId connection, const ToClient& message);
  // Closes a connection, after writing what is queued to it when `flush` (to deliver a refusal).
  void close(ConnectionId connection, Status reason, bool flush = false);
  // The peer's description ("worker w1 (127.0.0.1:40123)"), or "" if gone.
  std::string peer(ConnectionId connection) const;
  size_t connection_count() const;
  // Bytes the connections hold in frame buffers now (ControlLimits::max_buffered_bytes bounds it).
  size_t buffered_bytes() const;

  // Stops accepting and closes every connection. Idempotent.
  void shutdown();

  class Impl;

 private:
  explicit ControlServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace runahead::net
