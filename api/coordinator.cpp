#include "runahead/coordinator.h"

#include <chrono>
#include <future>
#include <thread>

#include "actors/coordinator_actor.h"
#include "api/conversions.h"
#include "api/request_state.h"
#include "core/log.h"
#include "model/model_hash.h"
#include "net/control/control_server.h"
#include "runtime/actor_system.h"

namespace runahead {
namespace {

// The cluster's model from the config: a given hash, the hash of a given model, both (which
// must agree) or, only when asked for, the first worker's.
Status resolve_expected_model(const CoordinatorConfig& config, CoordinatorOptions& options) {
  if (!config.expected_model_hash.empty() && !is_model_hash(config.expected_model_hash)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "coordinator: model hash '" + config.expected_model_hash +
                          "' is not a model hash (16 or 64 lowercase hex digits, as `runahead "
                          "status` shows them)");
  }
  options.model_source = "--model-hash";
  if (!config.model_path.empty()) {
    const auto started = std::chrono::steady_clock::now();
    auto hashed = model_path_hash(config.model_path);
    if (!hashed) {
      return make_error(hashed.error().code, "coordinator: cannot hash the expected model " +
                                                 config.model_path + ": " + hashed.error().message);
    }
    if (!config.expected_model_hash.empty() && *hashed != config.expected_model_hash) {
      return make_error(ErrorCode::kInvalidArgument,
                        "coordinator: model " + config.model_path + " has hash " + *hashed +
                            ", not the expected " + config.expected_model_hash);
    }
    options.expected_model_hash = *hashed;
    logger("coordinator")
        ->info("expected model {}: hash {} ({:.2f} s)", config.model_path, *hashed,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    options.model_source = "--model " + config.model_path;
  }
  if (options.expected_model_hash.empty() && !config.adopt_first_model) {
    return make_error(ErrorCode::kInvalidArgument,
                      "coordinator: no expected model: give --model PATH (or model_path), "
                      "--model-hash HASH (expected_model_hash) or, to take whatever model the "
                      "first worker runs, --adopt-first-model (adopt_first_model)");
  }
  if (!options.expected_model_hash.empty() && config.adopt_first_model) {
    return make_error(ErrorCode::kInvalidArgument,
                      "coordinator: --adopt-first-model and an expected model (" +
                          options.model_source + ") exclude each other");
  }
  return Status::ok();
}

}  // namespace

class Coordinator::Impl {
 public:
  ~Impl() { shutdown(); }

  Status start(const CoordinatorConfig& config) {
    CoordinatorOptions options = to_coordinator_options(config);
    RUNAHEAD_RETURN_IF_ERROR(resolve_expected_model(config, options));
    auto auth =
        net::ControlAuth::load(config.cluster_key_file, config.client_key_file, config.insecure);
    if (!auth) return make_error(auth.error().code, "coordinator: " + auth.error().message);
    // The server first, so that the actor answers through it from its first message on. It
    // delivers to the actor spawned next: nothing is accepted or delivered before the system's
    // threads start, once both exist.
    using Sink = net::ControlEventSink<net::ToCoordinator>;
    auto deliver = std::make_shared<Sink>([](net::ControlEvent<net::ToCoordinator>) -> Status {
      return make_error(ErrorCode::kUnavailable, "the coordinator is not running");
    });
    net::ControlLimits limits;
    limits.handshake_timeout = config.handshake_timeout;
    limits.idle_timeout = config.idle_timeout;
    limits.transfer_timeout = config.transfer_timeout;
    limits.max_connections = config.max_connections;
    limits.max_buffered_bytes = config.max_buffered_bytes;
    auto listening = net::ControlServer::listen(
        system.io(), config.listen,
        [deliver](net::ControlEvent<net::ToCoordinator> event) {
          return (*deliver)(std::move(event));
        },
        limits, std::move(auth).value());
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
