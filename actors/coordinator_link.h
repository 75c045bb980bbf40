// A worker's link to its coordinator: the first join, the messages the worker sends, and, once
// the coordinator is lost (its connection closed or reset, or it went silent), joining again
// with exponential backoff and jitter, as a new worker (the coordinator plans its chains anew),
// until it succeeds or the give-up time passes. The model stays loaded throughout.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <asio/io_context.hpp>

#include "core/status.h"
#include "net/control/control_client.h"
#include "net/control/control_events.h"
#include "net/control/control_key.h"
#include "net/control/reconnect_backoff.h"

namespace runahead {

struct CoordinatorLinkOptions {
  std::string address;  // host:port of the coordinator
  std::string name;     // the worker's, for logs
  std::chrono::milliseconds connect_timeout{10000};
  net::ReconnectPolicy backoff;
  // Rejoining stops (gave_up) after this long without a coordinator; zero: never.
  std::chrono::milliseconds give_up_after{0};
  // The cluster key the worker proves at each join; none: the coordinator asks for none.
  std::optional<net::ControlKey> cluster_key;
};

struct CoordinatorLinkCallbacks {
  std::function<net::Hello()> hello;  // what the worker says at each join
  // The coordinator's messages and the close of each connection (to the worker actor).
  net::ControlEventSink<net::ToWorker> sink;
  // After each successful join, before any message of that connection reaches the sink.
  std::function<void(uint64_t worker_id, net::ConnectionId connection, bool rejoined)> joined;
  // Rejoining failed for good (give-up time passed, or the coordinator speaks another protocol).
  std::function<void(Status why)> gave_up;
};

class CoordinatorLink {
 public:
  CoordinatorLink(asio::io_context& io, CoordinatorLinkOptions options,
                  CoordinatorLinkCallbacks callbacks);
  ~CoordinatorLink();  // stop()
  CoordinatorLink(const CoordinatorLink&) = delete;
  CoordinatorLink& operator=(const CoordinatorLink&) = delete;

  // The first join; waits for it. Must not be called on a thread of `io`.
  [[nodiscard]] Status join();
  // The coordinator is lost and the worker let go of its requests: join again, with backoff.
  void rejoin(const Status& why);
  // Closes the current connection with `why` (the coordinator went silent); the close reaches
  // the sink like any other.
  void drop(Status why);
  // On the current connection; kUnavailable while there is none.
  [[nodiscard]] Status send(const net::ToCoordinator& message);
  // No more attempts; closes the connection after what is queued. Idempotent.
  void stop();

  class State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace runahead
