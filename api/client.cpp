#include "runahead/client.h"

#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>

#include "api/conversions.h"
#include "api/request_state.h"
#include "net/control/control_client.h"
#include "runtime/actor_system.h"
#include "runtime/overloaded.h"

namespace runahead {

class Client::Impl {
 public:
  ~Impl() { close(); }

  Status connect(const ClientConfig& config) {
    const std::string& address = config.coordinator_address;
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
    auto connected = net::ClientControlClient::connect(
        system.io(), address, hello,
        [this](net::ControlEvent<net::ToClient> event) { return on_event(std::move(event)); },
        config.timeout, net::ControlLimits{}, std::move(key));
    if (!connected) {
      return make_error(connected.error().code, "cannot connect to the coordinator at " + address +
                                                    ": " + connected.error().message);
    }
    connection = std::move(connected).value();
    return Status::ok();
  }

  Status on_event(net::ControlEvent<net::ToClient> event) {
    std::visit(
        runtime::Overloaded{
            [&](net::ControlReceived<net::ToClient>& received) {
              on_message(std::move(received.message));
            },
            [&](net::ControlClosed& closed) {
              fail_all(make_error(ErrorCode::kUnavailable,
                                  "the coordinator connection closed: " + closed.reason.message()));
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
                     if (auto state = find(result.request_id, true)) state->result(result);
                   },
                   [&](net::RequestError& error) {
                     if (auto state = find(error.request_id, true)) state->error(error);
                   },
                   [&](net::StatusReply& reply) { on_status_reply(std::move(reply)); },
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
    if (connection) connection->close(true);
    system.stop(runtime::StopMode::kDrop);
    fail_all(make_error(ErrorCode::kCancelled, "the client closed"));
    connection.reset();
  }

  runtime::ActorSystem system{runtime::ActorSystemOptions{.threads = 1}};
  std::unique_ptr<net::ClientControlClient> connection;
  std::mutex mutex;
  uint64_t next_id = 1;
  std::map<uint64_t, std::shared_ptr<RequestHandle::State>> requests;
  std::deque<std::shared_ptr<std::promise<net::StatusReply>>> status_waiters;
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
  if (Status sent = impl_->connection->send(submit); !sent.is_ok()) {
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
