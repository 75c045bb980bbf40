// Pieces shared by the TCP tests: an event log to wait on, a server-owning actor (the way a
// coordinator uses ControlServer), a raw TCP peer that can send anything, and captured logs.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "net/control/control_client.h"
#include "net/control/control_events.h"
#include "net/control/control_server.h"
#include "runtime/actor.h"

namespace runahead::net::testing {

using namespace std::chrono_literals;

// Events in arrival order, with waiting: those of the server's owner (messages to the
// coordinator) or of a connecting end (messages to a worker or a client).
template <typename Incoming>
class EventLog {
 public:
  void push(ControlEvent<Incoming> event) {
    {
      std::lock_guard lock(mutex_);
      events_.push_back(std::move(event));
    }
    changed_.notify_all();
  }
  ControlEventSink<Incoming> sink() {
    return [this](ControlEvent<Incoming> event) {
      push(std::move(event));
      return Status::ok();
    };
  }
  // Waits until some event satisfies `match`; returns a copy of it.
  std::optional<ControlEvent<Incoming>> wait_for(
      const std::function<bool(const ControlEvent<Incoming>&)>& match,
      std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mutex_);
    std::optional<ControlEvent<Incoming>> found;
    changed_.wait_for(lock, timeout, [&] {
      for (const auto& event : events_) {
        if (match(event)) {
          found = event;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  size_t size() const {
    std::lock_guard lock(mutex_);
    return events_.size();
  }
  std::vector<ControlEvent<Incoming>> snapshot() const {
    std::lock_guard lock(mutex_);
    return events_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<ControlEvent<Incoming>> events_;
};

using ServerEvents = EventLog<ToCoordinator>;

template <typename T, typename Incoming = ToCoordinator>
std::function<bool(const ControlEvent<Incoming>&)> received() {
  return [](const ControlEvent<Incoming>& event) {
    auto* got = std::get_if<ControlReceived<Incoming>>(&event);
    return got != nullptr && std::holds_alternative<T>(got->message);
  };
}

template <typename Incoming = ToCoordinator>
std::function<bool(const ControlEvent<Incoming>&)> closed(ConnectionId connection) {
  return [connection](const ControlEvent<Incoming>& event) {
    auto* got = std::get_if<ControlClosed>(&event);
    return got != nullptr && got->connection == connection;
  };
}

// Asks the server owner to send a message on a connection; replies with the send's status.
struct SendTo {
  ConnectionId connection;
  ToClient message;
  std::shared_ptr<std::promise<Status>> sent;
};
// Keeps the owner busy (its thread blocked) until `until` is ready.
struct Block {
  std::shared_future<void> until;
  std::shared_ptr<std::promise<void>> started;
};
using ServerOwnerMessage =
    std::variant<ControlReceived<ToCoordinator>, ControlClosed, SendTo, Block>;

struct ServerOwnerOptions {
  bool accept = true;
  ControlLimits limits;
  size_t mailbox_capacity = 0;  // 0: the system's default
  ControlAuth auth;             // keys the server asks peers to prove
};

// Owns a ControlServer the way a coordinator does: created in on_start, its events delivered to
// this actor's mailbox. Answers Hello with HelloAck (accepting or not), SubmitRequest with a
// Token carrying the prompt length, SliceReady with a StartSlice carrying its kv target, and
// records every event.
class ServerOwner : public runtime::Actor<ServerOwnerMessage> {
 public:
  ServerOwner(ServerOwnerOptions options, ServerEvents* log, std::promise<uint16_t>* port);

 protected:
  Status on_start() override;
  void on_message(ServerOwnerMessage message) override;
  void on_stop() override;

 private:
  ServerOwnerOptions options_;
  ServerEvents* log_;
  std::promise<uint16_t>* port_;
  std::unique_ptr<ControlServer> server_;
};

// A server owner on a threaded actor system.
class TestServer {
 public:
  explicit TestServer(ServerOwnerOptions options = {});
  ~TestServer();
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  ServerEvents& events() { return events_; }
  Status send(ConnectionId connection, ToClient message);
  // Returns once the owner is blocked.
  Status block(std::shared_future<void> until);
  runtime::ActorSystem& system() { return system_; }

 private:
  runtime::ActorSystem system_;
  ServerEvents events_;
  runtime::ActorRef<ServerOwnerMessage> owner_;
  uint16_t port_ = 0;
};

Hello client_hello(std::string name);

// A blocking TCP peer that speaks bytes, not the protocol: it writes what a client or worker
// sends and reads what the coordinator answers a client.
class RawPeer {
 public:
  explicit RawPeer(uint16_t port);
  // Writes all of `bytes`; false if the server already closed the connection.
  bool write(const std::vector<uint8_t>& bytes);
  void write_message(const ToCoordinator& message);
  void shutdown_send();
  // Reads the HelloAck, or nullopt on timeout/close/garbage/another message.
  std::optional<HelloAck> read_ack(std::chrono::milliseconds timeout = 5s);
  // Reads the answer to Hello (a HelloAck or a HelloChallenge), or nullopt as read_ack.
  std::optional<HandshakeAnswer> read_answer(std::chrono::milliseconds timeout = 5s);
  void write_proof(const HelloProof& proof);
  // Reads one message to a client, or nullopt on timeout/close/garbage/another direction.
  std::optional<ToClient> read_message(std::chrono::milliseconds timeout = 5s);
  // Whether the other side closed the connection within `timeout` (data read is discarded).
  bool closed_by_peer(std::chrono::milliseconds timeout = 5s);
  // "127.0.0.1:PORT" of this end, as the server names it.
  std::string local_address() const;

 private:
  bool read_exact(uint8_t* out, size_t bytes, std::chrono::steady_clock::time_point deadline);
  // One frame's body, or nullopt on timeout/close/a bad header.
  std::optional<std::vector<uint64_t>> read_body(std::chrono::milliseconds timeout);
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
};

// Warning lines logged by the "control" component since the last clear.
std::vector<std::string> captured_control_warnings();
void clear_captured_control_warnings();
bool any_warning_contains(const std::string& text);

}  // namespace runahead::net::testing
