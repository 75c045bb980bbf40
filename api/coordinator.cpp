#include "runahead/coordinator.h"

#include <future>
#include <thread>

#include "actors/coordinator_actor.h"
#include "api/conversions.h"
#include "api/request_state.h"
#include "net/control/control_server.h"
#include "runtime/actor_system.h"

namespace runahead {

class Coordinator::Impl {
 public:
  ~Impl() { shutdown(); }

  Status start(const CoordinatorConfig& config) {
    const CoordinatorOptions options = to_coordinator_options(config);
    // The server first, so that the actor answers through it from its first message on. It
    // delivers to the actor spawned next: nothing is accepted or delivered before the system's
    // threads start, once both exist.
    using Sink = net::ControlEventSink<net::ToCoordinator>;
    auto deliver = std::make_shared<Sink>([](net::ControlEvent<net::ToCoordinator>) -> Status {
      return make_error(ErrorCode::kUnavailable, "the coordinator is not running");
    });
    auto listening = net::ControlServer::listen(
        system.io(), config.listen, [deliver](net::ControlEvent<net::ToCoordinator> event) {
          return (*deliver)(std::move(event));
        });
    if (!listening) {
      return make_error(listening.error().code, "coordinator: cannot listen on " + config.listen +
                                                    ": " + listening.error().message);
    }
    server = std::move(listening).value();
    RUNAHEAD_ASSIGN_OR_RETURN(actor,
                              system.spawn<CoordinatorActor>("coordinator", options, server));
    *deliver = net::deliver_to<net::ToCoordinator>(actor);
    system.start();
    return Status::ok();
  }

  void shutdown() {
    if (stopped) return;
    stopped = true;
    system.stop(runtime::StopMode::kDrain);
    if (server) server->shutdown();
  }

  runtime::ActorSystem system{runtime::ActorSystemOptions{.threads = 2}};
  std::shared_ptr<net::ControlServer> server;
  runtime::ActorRef<CoordinatorMessage> actor;
  bool stopped = false;
};

Result<std::unique_ptr<Coordinator>> Coordinator::start(const CoordinatorConfig& config) {
  auto impl = std::make_unique<Impl>();
  RUNAHEAD_RETURN_IF_ERROR(impl->start(config));
  return std::unique_ptr<Coordinator>(new Coordinator(std::move(impl)));
}

Coordinator::Coordinator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Coordinator::~Coordinator() {
  shutdown();
}

std::string Coordinator::address() const {
  return impl_->server->local_address();
}

Result<RequestHandle> Coordinator::submit(RequestOptions options, TokenCallback on_token) {
  return submit_state(std::move(options),
                      std::make_shared<RequestHandle::State>(std::move(on_token)));
}

Result<RequestHandle> Coordinator::submit_streaming(RequestOptions options,
                                                    StreamCallback on_token) {
  return submit_state(std::move(options),
                      std::make_shared<RequestHandle::State>(TokenCallback{}, std::move(on_token)));
}

Result<RequestHandle> Coordinator::submit_state(RequestOptions options,
                                                std::shared_ptr<RequestHandle::State> state) {
  RUNAHEAD_RETURN_IF_ERROR(validate_options(options));
  auto accepted = std::make_shared<std::promise<Result<uint64_t>>>();
  auto answer = accepted->get_future();
  RUNAHEAD_RETURN_IF_ERROR(impl_->actor.tell(LocalSubmit{to_submit(options), state, accepted}));
  RUNAHEAD_ASSIGN_OR_RETURN(const uint64_t id, answer.get());
  state->set_id(id);
  return RequestHandle(state);
}

Status Coordinator::cancel(uint64_t request_id, const std::string& reason) {
  return impl_->actor.tell(LocalCancel{request_id, reason});
}

Result<ClusterStatus> Coordinator::status() {
  auto reply = std::make_shared<std::promise<net::StatusReply>>();
  auto answer = reply->get_future();
  RUNAHEAD_RETURN_IF_ERROR(impl_->actor.tell(LocalStatus{reply}));
  return to_cluster_status(answer.get());
}

Status Coordinator::wait_for_workers(size_t count, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    RUNAHEAD_ASSIGN_OR_RETURN(ClusterStatus now, status());
    if (now.workers.size() >= count) return Status::ok();
    if (std::chrono::steady_clock::now() >= deadline) {
      return make_error(ErrorCode::kTimeout, "only " + std::to_string(now.workers.size()) + " of " +
                                                 std::to_string(count) + " workers joined within " +
                                                 std::to_string(timeout.count()) + " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void Coordinator::shutdown() {
  if (impl_) impl_->shutdown();
}

}  // namespace runahead
