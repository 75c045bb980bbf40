#include "runahead/client.h"

#include <algorithm>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "api/conversions.h"
#include "api/request_state.h"
#include "net/control/control_client.h"
#include "net/control/control_limits.h"
#include "runtime/actor_system.h"
#include "runtime/liveness_clock.h"
#include "runtime/overloaded.h"

namespace runahead {
namespace {

// How long past a request's own timeout the client waits for the coordinator's answer (which
// names the workers) before it gives up by itself: a tenth of it, within [250 ms, 1 s].
std::chrono::milliseconds client_grace(std::chrono::milliseconds timeout) {
  return std::clamp(timeout / 10, std::chrono::milliseconds(250), std::chrono::milliseconds(1000));
}
constexpr std::chrono::milliseconds kKeepaliveInterval{30000};

}  // namespace

class Client::Impl {
 public:
  ~Impl() { close(); }

  Status connect(const ClientConfig& config) {
    const std::string& address = config.coordinator_address;
    coordinator_address = address;
    silence_limit = config.timeout;
    std::optional<net::ControlKey> key;
    if (!config.client_key_file.empty()) {
      auto loaded = net::ControlKey::load(config.client_key_file);
      if (!loaded) return loaded.error();
      key = std::move(loaded).value();
    }
    system.start();
    net::Hello hello;
    hello.role = net::PeerRole::kClient;
    hello.name = "client";
    // A client waiting for a long request sends nothing else: the heartbeat keeps it within
    // the coordinator's idle timeout.
    net::ControlLimits limits;
    limits.keepalive_interval = kKeepaliveInterval;
    auto connected = net::ClientControlClient::connect(
        system.io(), address, hello,
        [this](net::ControlEvent<net::ToClient> event) { return on_event(std::move(event)); },
        config.timeout, limits, std::move(key));
    if (!connected) {
      return make_error(connected.error().code, "cannot connect to the coordinator at " + address +
                                                    ": " + connected.error().message);
    }
    connection = std::move(connected).value();
    {
      std::lock_guard lock(mutex);
      heard = liveness.now();
    }
    asio::post(system.io(), [this] { watch_silence(); });
    return Status::ok();
  }

  // Every check period: a coordinator silent for longer than the limit (it sends a heartbeat
  // every 500 ms by default) is taken for gone, and the connection closed, which fails every
  // request still running. Runs on the system's thread.
  void watch_silence() {
    Status silent;
    {
      std::lock_guard lock(mutex);
      if (closing) return;
      (void)liveness.check();
      const auto quiet =
          std::chrono::duration_cast<std::chrono::milliseconds>(liveness.now() - heard);
      if (quiet > silence_limit) {
        silent = make_error(ErrorCode::kTimeout,
                            "nothing heard from the coordinator at " + coordinator_address +
                                " for " + std::to_string(quiet.count()) + " ms (the limit is " +
                                std::to_string(silence_limit.count()) + " ms)");
      }
    }
    if (!silent.is_ok()) {
      connection->close(std::move(silent));
      return;
    }
    silence_timer.expires_after(kSilenceCheckPeriod);
    silence_timer.async_wait([this](const std::error_code& error) {
      if (!error) watch_silence();
    });
  }

  Status on_event(net::ControlEvent<net::ToClient> event) {
    {
      std::lock_guard lock(mutex);
      heard = liveness.now();
    }
    std::visit(runtime::Overloaded{
                   [&](net::ControlReceived<net::ToClient>& received) {
                     on_message(std::move(received.message));
                   },
                   [&](net::ControlClosed& closed) {
                     // kTimeout when the coordinator went silent, kUnavailable when it went away.
                     const ErrorCode code = closed.reason.code() == ErrorCode::kTimeout
                                                ? ErrorCode::kTimeout
                                                : ErrorCode::kUnavailable;
                     fail_all(make_error(
                         code, "the coordinator connection closed: " + closed.reason.message()));
                   },
               },
               event);
    return Status::ok();
  }

  std::shared_ptr<RequestHandle::State> find(uint64_t id, bool remove) {
    std::lock_guard lock(mutex);
    auto it = requests.find(id);
    if (it == requests.end()) return nullptr;
    auto state = it->second;
    if (remove) requests.erase(it);
    return state;
  }

  // The coordinator's messages, one handler each.
  void on_message(net::ToClient message) {
    std::visit(runtime::Overloaded{
                   [&](net::Token& token) {
                     if (auto state = find(token.request_id, false)) state->token(token);
                   },
                   [&](net::RequestResult& result) {
                     forget_deadline(result.request_id);
                     if (auto state = find(result.request_id, true)) state->result(result);
                   },
                   [&](net::RequestError& error) {
                     forget_deadline(error.request_id);
                     if (auto state = find(error.request_id, true)) state->error(error);
                   },
                   [&](net::StatusReply& reply) { on_status_reply(std::move(reply)); },
                   [&](net::Heartbeat&) {},  // the coordinator is alive: noted on arrival
               },
               message);
  }

  void on_status_reply(net::StatusReply reply) {
    std::shared_ptr<std::promise<net::StatusReply>> waiting;
    {
      std::lock_guard lock(mutex);
      if (status_waiters.empty()) return;
      waiting = status_waiters.front();
      status_waiters.pop_front();
    }
    waiting->set_value(std::move(reply));
  }

  // The client's own deadline of a request with a timeout: it holds even when the coordinator
  // never answers (stopped, cut off). Called with `mutex` not held.
  void arm_deadline(uint64_t id, std::chrono::milliseconds timeout) {
    auto timer = std::make_unique<asio::steady_timer>(system.io());
    timer->expires_after(timeout + client_grace(timeout));
    std::lock_guard lock(mutex);
    timer->async_wait([this, id, timeout](const std::error_code& aborted) {
      if (!aborted) give_up(id, timeout);
    });
    deadlines[id] = std::move(timer);
  }

  void forget_deadline(uint64_t id) {
    std::lock_guard lock(mutex);
    auto it = deadlines.find(id);
    if (it == deadlines.end()) return;
    it->second->cancel();
    deadlines.erase(it);
  }

  void give_up(uint64_t id, std::chrono::milliseconds timeout) {
    forget_deadline(id);
    auto state = find(id, true);
    if (!state) return;
    const std::string why = "request " + std::to_string(id) +
                            ": no answer from the coordinator at " + coordinator_address +
                            " within its timeout of " + std::to_string(timeout.count()) +
                            " ms; the client gave up and cancelled it";
    (void)connection->send(net::Cancel{.request_id = id, .reason = why});
    state->error(net::RequestError{.request_id = id, .code = ErrorCode::kTimeout, .message = why});
  }

  void fail_all(Status reason) {
    std::map<uint64_t, std::shared_ptr<RequestHandle::State>> orphaned;
    {
      std::lock_guard lock(mutex);
      orphaned.swap(requests);
    }
    for (auto& [id, state] : orphaned) {
      state->error(
          net::RequestError{.request_id = id, .code = reason.code(), .message = reason.message()});
    }
  }

  void close() {
    {
      std::lock_guard lock(mutex);
      closing = true;
    }
    if (connection) connection->close(true);
    system.stop(runtime::StopMode::kDrop);
    {
      std::lock_guard lock(mutex);
      deadlines.clear();
    }
    fail_all(make_error(ErrorCode::kCancelled, "the client closed"));
    connection.reset();
  }

  static constexpr auto kSilenceCheckPeriod = std::chrono::milliseconds(200);

  runtime::ActorSystem system{runtime::ActorSystemOptions{.threads = 1}};
  std::unique_ptr<net::ClientControlClient> connection;
  std::string coordinator_address;
  std::chrono::milliseconds silence_limit{0};
  asio::steady_timer silence_timer{system.io()};  // the system's thread only
  std::mutex mutex;
  // When the coordinator was last heard from, on a clock that skips this process's own pauses.
  runtime::LivenessClock liveness{std::chrono::seconds(1)};
  runtime::LivenessClock::Duration heard{};
  bool closing = false;
  uint64_t next_id = 1;
  std::map<uint64_t, std::shared_ptr<RequestHandle::State>> requests;
  std::deque<std::shared_ptr<std::promise<net::StatusReply>>> status_waiters;
  std::map<uint64_t, std::unique_ptr<asio::steady_timer>> deadlines;  // requests with a timeout
};

Result<std::unique_ptr<Client>> Client::connect(const ClientConfig& config) {
  auto impl = std::make_unique<Impl>();
  RUNAHEAD_RETURN_IF_ERROR(impl->connect(config));
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Result<std::unique_ptr<Client>> Client::connect(const std::string& coordinator_address,
                                                std::chrono::milliseconds timeout) {
  ClientConfig config;
  config.coordinator_address = coordinator_address;
  config.timeout = timeout;
  return connect(config);
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() {
  close();
}

Result<RequestHandle> Client::submit(RequestOptions options, TokenCallback on_token) {
  RUNAHEAD_RETURN_IF_ERROR(validate_options(options));
  auto state = std::make_shared<RequestHandle::State>(std::move(on_token));
  net::SubmitRequest submit = to_submit(options);
  {
    std::lock_guard lock(impl_->mutex);
    submit.request_id = impl_->next_id++;
    impl_->requests[submit.request_id] = state;
  }
  state->set_id(submit.request_id);
  if (options.timeout_ms > 0) {
    impl_->arm_deadline(submit.request_id, std::chrono::milliseconds(options.timeout_ms));
  }
  if (Status sent = impl_->connection->send(submit); !sent.is_ok()) {
    impl_->forget_deadline(submit.request_id);
    impl_->find(submit.request_id, true);
    return sent.error();
  }
  return RequestHandle(state);
}

Status Client::cancel(uint64_t request_id, const std::string& reason) {
  return impl_->connection->send(net::Cancel{.request_id = request_id, .reason = reason});
}

Result<ClusterStatus> Client::status(std::chrono::milliseconds timeout) {
  auto reply = std::make_shared<std::promise<net::StatusReply>>();
  auto answer = reply->get_future();
  {
    std::lock_guard lock(impl_->mutex);
    impl_->status_waiters.push_back(reply);
  }
  RUNAHEAD_RETURN_IF_ERROR(impl_->connection->send(net::StatusQuery{}));
  if (answer.wait_for(timeout) != std::future_status::ready) {
    return make_error(ErrorCode::kTimeout, "the coordinator did not answer a status query within " +
                                               std::to_string(timeout.count()) + " ms");
  }
  return to_cluster_status(answer.get());
}

void Client::close() {
  if (impl_) impl_->close();
}

}  // namespace runahead
