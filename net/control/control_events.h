// What the control plane delivers to the actor that owns a server or a client connection:
// each decoded message of the direction that end receives (ToCoordinator at the coordinator's
// server, ToWorker or ToClient at a connecting end) with the connection it came on, and one
// notice when a connection that completed its handshake closes (peer gone, protocol error,
// local close), so that a dead peer is noticed like any other message.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <variant>

#include "core/status.h"
#include "net/control/control_messages.h"
#include "runtime/actor.h"

namespace runahead::net {

using ConnectionId = uint64_t;

// Incoming is the direction's variant: ToCoordinator, ToWorker or ToClient.
template <typename Incoming>
struct ControlReceived {
  ConnectionId connection = 0;
  Incoming message;
};

struct ControlClosed {
  ConnectionId connection = 0;
  std::string peer;  // e.g. "worker w1 (127.0.0.1:40123)"
  Status reason;     // why it closed
};

template <typename Incoming>
using ControlEvent = std::variant<ControlReceived<Incoming>, ControlClosed>;

// Receives events, on a network thread. An error (the owner cannot take more) closes the
// connection the event came from.
template <typename Incoming>
using ControlEventSink = std::function<Status(ControlEvent<Incoming>)>;

// A sink that queues each event in an actor's mailbox: M must be constructible from
// ControlReceived<Incoming> and from ControlClosed (a variant listing both, typically). A full
// mailbox closes the connection rather than letting a peer grow memory without bound.
template <typename Incoming, typename M>
ControlEventSink<Incoming> deliver_to(runtime::ActorRef<M> actor) {
  return [actor](ControlEvent<Incoming> event) -> Status {
    return std::visit([&](auto& alternative) { return actor.tell(M(std::move(alternative))); },
                      event);
  };
}

}  // namespace runahead::net
