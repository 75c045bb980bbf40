#include "actors/coordinator_actor.h"

#include <algorithm>
#include <array>
#include <set>

#include <fmt/format.h>

#include "core/log.h"
#include "core/log_limiter.h"
#include "core/secure_random.h"
#include "model/config.h"
#include "net/control/control_limits.h"
#include "planner/claimed_costs.h"
#include "planner/plan.h"
#include "runtime/overloaded.h"

namespace runahead {
namespace {

using runtime::Overloaded;
using Clock = std::chrono::steady_clock;

constexpr auto kHealthPeriod = std::chrono::milliseconds(100);
// The most one health tick counts of the time since the previous one: a longer gap means the
// coordinator was not running (paused, stalled), and its workers cannot be blamed for it.
constexpr auto kLivenessStep = std::chrono::milliseconds(1000);

uint64_t nanos_between(Clock::time_point from, Clock::time_point to) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count());
}

// Answers to a remote client, under the id the client chose for its request.
class ConnectionSink final : public RequestSink {
 public:
  ConnectionSink(std::shared_ptr<net::ControlServer> server, net::ConnectionId connection,
                 uint64_t client_request_id)
      : server_(std::move(server)), connection_(connection), client_id_(client_request_id) {}

  void token(const net::Token& token) override {
    net::Token copy = token;
    copy.request_id = client_id_;
    deliver(copy);
  }
  void result(const net::RequestResult& result) override {
    net::RequestResult copy = result;
    copy.request_id = client_id_;
    deliver(copy);
  }
  void error(const net::RequestError& error) override {
    net::RequestError copy = error;
    copy.request_id = client_id_;
    deliver(copy);
  }

 private:
  void deliver(const net::ToClient& message) {
    Status sent = server_->send(connection_, message);
    if (!sent.is_ok()) {
      warn_limited(*logger("coordinator"), "coordinator: cannot send",
                   "cannot answer client connection {}: {}", connection_, sent.to_string());
    }
  }

  std::shared_ptr<net::ControlServer> server_;
  net::ConnectionId connection_;
  uint64_t client_id_;
};

}  // namespace

// A registered worker: its record (id, name, what it said of itself; the health fields are
// filled in when a status reads it) and the coordinator's bookkeeping.
struct CoordinatorActor::WorkerEntry : WorkerRecord {
  net::ConnectionId connection = 0;
  runtime::LivenessClock::Duration last_heard{};  // on the coordinator's liveness clock
  std::vector<uint64_t> requests;                 // dispatched requests this worker is part of
};

struct CoordinatorActor::Request {
  uint64_t id = 0;
  net::ConnectionId client_connection = 0;  // 0 for in-process callers
  net::SubmitRequest submit;
  std::shared_ptr<RequestSink> sink;
  std::vector<uint64_t> chain;  // worker ids in prefix order
  Partition cuts;
  std::set<uint64_t> ready_from;                        // workers that sent SliceReady
  std::map<uint64_t, std::vector<uint8_t>> kv_targets;  // from SliceReady, by worker
  bool all_direct = true;        // every SliceReady said its worker reaches all others directly
  std::set<uint64_t> done_from;  // workers that sent SliceDone
  bool started = false;
  bool all_tokens = false;
  std::vector<int32_t> tokens;
  std::vector<LayerTiming> timeline;
  Clock::time_point submitted;
  Clock::time_point first_token;
  runtime::TimerId deadline = 0;
  std::chrono::milliseconds timeout{0};  // when `deadline` fires, counted from `submitted`
  bool own_deadline = false;             // the request's timeout, not the coordinator's
};

CoordinatorActor::CoordinatorActor(CoordinatorOptions options,
                                   std::shared_ptr<net::ControlServer> server)
    : options_(std::move(options)),
      server_(std::move(server)),
      model_hash_(options_.expected_model_hash),
      liveness_(kLivenessStep) {}

CoordinatorActor::~CoordinatorActor() = default;

Status CoordinatorActor::on_start() {
  if (options_.partition != PartitionScheme::kBalanced &&
      options_.partition != PartitionScheme::kEven) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string("the coordinator's default partition must be balanced or even, "
                                  "not ") +
                          partition_scheme_name(options_.partition));
  }
  if (options_.expected_model_hash.empty() != options_.adopt_first_model) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the coordinator needs either an expected model hash or adopt_first_model");
  }
  if (!options_.profile_path.empty()) {
    RUNAHEAD_ASSIGN_OR_RETURN(Profile profile, Profile::load(options_.profile_path));
    logger("coordinator")
        ->info("profile {}: model {}, {} worker(s), {} searched length(s)", options_.profile_path,
               profile.model.hash, profile.workers.size(), profile.searched.size());
    profile_ = std::move(profile);
  }
  if (options_.heartbeat_interval.count() <= 0 || options_.heartbeat_timeout.count() <= 0) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "the coordinator's heartbeat interval (" +
            std::to_string(options_.heartbeat_interval.count()) + " ms) and heartbeat timeout (" +
            std::to_string(options_.heartbeat_timeout.count()) + " ms) must be positive");
  }
  liveness_ = runtime::LivenessClock(kLivenessStep);
  start_periodic(kHealthPeriod, [] { return CoordinatorMessage(HealthTick{}); });
  return Status::ok();
}

void CoordinatorActor::on_stop() {
  // Every accepted request gets its one answer, also when the coordinator shuts down.
  std::vector<uint64_t> ids;
  for (const auto& [id, request] : requests_) ids.push_back(id);
  for (uint64_t id : ids) fail(id, ErrorCode::kCancelled, "the coordinator is shutting down");
}

namespace {

template <typename Message>
Status send_over(net::ControlServer& server, net::ConnectionId connection, const Message& message) {
  Status sent = server.send(connection, message);
  if (!sent.is_ok()) {
    // A peer that asks and never reads fails every send: a few lines, not one per message.
    warn_limited(*logger("coordinator"), "coordinator: cannot send", "cannot send {} to {}: {}",
                 net::message_kind_name(message), server.peer(connection), sent.to_string());
  }
  return sent;
}

}  // namespace

Status CoordinatorActor::send(net::ConnectionId connection, const net::HelloAck& message) {
  return send_over(*server_, connection, message);
}
Status CoordinatorActor::send(net::ConnectionId connection, const net::ToWorker& message) {
  return send_over(*server_, connection, message);
}
Status CoordinatorActor::send(net::ConnectionId connection, const net::ToClient& message) {
  return send_over(*server_, connection, message);
}

std::string CoordinatorActor::worker_name(uint64_t worker_id) const {
  auto it = workers_.find(worker_id);
  const std::string name = it == workers_.end() ? std::string("?") : it->second->name;
  return "worker " + name + " (id " + std::to_string(worker_id) + ")";
}

void CoordinatorActor::on_message(CoordinatorMessage message) {
  std::visit(
      Overloaded{
          [&](net::ControlReceived<net::ToCoordinator>& received) {
            on_control(received.connection, std::move(received.message));
          },
          [&](net::ControlClosed& closed) { on_closed(closed); },
          [&](LocalSubmit& submit) {
            on_submit(std::move(submit.request), std::move(submit.sink), submit.accepted, 0);
          },
          [&](LocalCancel& cancel) {
            if (requests_.count(cancel.request_id) != 0) {
              fail(cancel.request_id, ErrorCode::kCancelled,
                   "request " + std::to_string(cancel.request_id) + " cancelled: " + cancel.reason);
            }
          },
          [&](LocalStatus& query) { query.reply->set_value(status_reply()); },
          [&](HealthTick&) { on_health_tick(); },
          [&](RequestDeadline& deadline) {
            auto it = requests_.find(deadline.request_id);
            if (it == requests_.end()) return;
            std::string waiting;
            for (uint64_t worker : it->second->chain) {
              waiting += (waiting.empty() ? "" : ", ") + worker_name(worker);
            }
            const Request& request = *it->second;
            fail(deadline.request_id, ErrorCode::kTimeout,
                 "request " + std::to_string(deadline.request_id) + " timed out after " +
                     std::to_string(request.timeout.count()) + " ms (" +
                     (request.own_deadline ? "its own deadline"
                                           : "the coordinator's request timeout") +
                     ")" + (waiting.empty() ? " in the queue" : " on " + waiting));
          },
      },
      message);
}

void CoordinatorActor::on_control(net::ConnectionId connection, net::ToCoordinator message) {
  // The sender's role, for the messages only one role sends.
  // Anything a worker sends shows it alive.
  if (auto it = worker_of_connection_.find(connection); it != worker_of_connection_.end()) {
    workers_[it->second]->last_heard = liveness_.now();
  }
  auto from_worker = [&](const char* kind) -> WorkerEntry* {
    auto it = worker_of_connection_.find(connection);
    if (it != worker_of_connection_.end()) return workers_[it->second].get();
    warn_limited(*logger("coordinator"), "coordinator: wrong role",
                 "{} from connection {}, which is no worker's; ignored", kind, connection);
    return nullptr;
  };
  auto from_client = [&](const char* kind) {
    if (client_sinks_.count(connection) != 0) return true;
    warn_limited(*logger("coordinator"), "coordinator: wrong role",
                 "{} from connection {}, which is no client's; ignored", kind, connection);
    return false;
  };
  std::visit(Overloaded{
                 [&](net::Hello& hello) { on_hello(connection, hello); },
                 [&](net::Heartbeat& beat) {
                   // Clients may send them too, to keep an idle connection open.
                   auto it = worker_of_connection_.find(connection);
                   if (it == worker_of_connection_.end()) return;
                   WorkerEntry& worker = *workers_[it->second];
                   worker.info.free_memory_bytes = beat.free_memory_bytes;
                 },
                 [&](net::SubmitRequest& submit) {
                   if (!from_client("SubmitRequest")) return;
                   auto sink =
                       std::make_shared<ConnectionSink>(server_, connection, submit.request_id);
                   on_submit(std::move(submit), sink, nullptr, connection);
                 },
                 [&](net::Cancel& cancel) {
                   for (auto& [id, request] : requests_) {
                     if (request->client_connection == connection &&
                         request->submit.request_id == cancel.request_id) {
                       fail(id, ErrorCode::kCancelled,
                            "request " + std::to_string(id) +
                                " cancelled by the client: " + cancel.reason);
                       return;
                     }
                   }
                 },
                 [&](net::StatusQuery&) {
                   if (from_client("StatusQuery")) (void)send(connection, status_reply());
                 },
                 [&](net::SliceReady& ready) {
                   if (WorkerEntry* worker = from_worker("SliceReady")) {
                     on_slice_ready(worker->id, ready);
                   }
                 },
                 [&](net::SliceDone& done) {
                   if (WorkerEntry* worker = from_worker("SliceDone")) {
                     on_slice_done(worker->id, std::move(done));
                   }
                 },
                 [&](net::Token& token) {
                   if (WorkerEntry* worker = from_worker("Token")) {
                     on_token(worker->id, std::move(token));
                   }
                 },
                 [&](net::RequestError& error) {
                   if (WorkerEntry* worker = from_worker("RequestError")) {
                     on_worker_error(worker->id, error);
                   }
                 },
             },
             message);
}

void CoordinatorActor::on_hello(net::ConnectionId connection, const net::Hello& hello) {
  auto refuse = [&](const std::string& reason) {
    warn_limited(*logger("coordinator"), "coordinator: refused", "refused {}: {}", hello.name,
                 reason);
    net::HelloAck ack;
    ack.accepted = false;
    ack.reason = reason;
    (void)send(connection, ack);
    server_->close(connection, make_error(ErrorCode::kProtocol, reason), true);
  };
  if (worker_of_connection_.count(connection) != 0 || client_sinks_.count(connection) != 0) {
    return refuse("a second Hello on one connection");
  }
  const uint64_t id = next_peer_id_++;
  switch (hello.role) {
    case net::PeerRole::kWorker: {
      if (hello.worker.model_hash.empty())
        return refuse("worker " + hello.name + " sent no model hash");
      if (model_hash_.empty()) {  // adopt_first_model
        model_hash_ = hello.worker.model_hash;
        logger("coordinator")
            ->warn("the cluster's model is {}, adopted from worker {} (--adopt-first-model)",
                   model_hash_, hello.name);
      }
      if (hello.worker.model_hash != model_hash_) {
        // peer() names the worker and its address once its Hello is read.
        return refuse(server_->peer(connection) + " runs model " + hello.worker.model_hash +
                      ", the cluster runs model " + model_hash_ +
                      (options_.adopt_first_model ? " (adopted from its first worker)"
                                                  : " (from " + options_.model_source + ")"));
      }
      if (Status claim = check_claimed_cost(
              {hello.worker.per_token_seconds, hello.worker.per_key_seconds}, hello.name);
          !claim.is_ok()) {
        return refuse(claim.message());
      }
      if (workers_.empty()) {
        sliding_window_ = hello.worker.sliding_window;
        max_positions_ = hello.worker.max_positions;
        vocab_size_ = hello.worker.vocab_size;
      }
      auto worker = std::make_unique<WorkerEntry>();
      worker->id = id;
      worker->connection = connection;
      worker->name = hello.name;
      worker->info = hello.worker;
      worker->last_heard = liveness_.now();
      workers_[id] = std::move(worker);
      worker_of_connection_[connection] = id;
      logger("coordinator")
          ->info("worker {} joined as id {} ({}, model {})", hello.name, id, hello.worker.backend,
                 hello.worker.model_hash);
      // For the operator's log only: status replies carry no data-plane address.
      logger("coordinator")
          ->debug("worker {} (id {}) data-plane address {:02x}", hello.name, id,
                  fmt::join(hello.worker.data_plane_address, ""));
      break;
    }
    case net::PeerRole::kClient:
      client_sinks_[connection] = nullptr;
      break;
  }
  net::HelloAck ack;
  ack.accepted = true;
  ack.peer_id = id;
  (void)send(connection, ack);
  dispatch();
}

void CoordinatorActor::on_closed(const net::ControlClosed& closed) {
  if (auto it = worker_of_connection_.find(closed.connection); it != worker_of_connection_.end()) {
    const uint64_t worker = it->second;
    worker_lost(worker, "its connection closed (" + closed.reason.message() + ")");
    return;
  }
  if (client_sinks_.erase(closed.connection) != 0) {
    std::vector<uint64_t> orphaned;
    for (const auto& [id, request] : requests_) {
      if (request->client_connection == closed.connection) orphaned.push_back(id);
    }
    for (uint64_t id : orphaned) {
      fail(id, ErrorCode::kCancelled, "the client of request " + std::to_string(id) + " left");
    }
  }
}

void CoordinatorActor::on_submit(net::SubmitRequest submit, std::shared_ptr<RequestSink> sink,
                                 const std::shared_ptr<std::promise<Result<uint64_t>>>& accepted,
                                 net::ConnectionId client_connection) {
  const uint64_t id = next_request_id_++;
  auto refuse = [&](const Status& why) {
    logger("coordinator")->info("refused {}", why.message());
    if (accepted) {
      accepted->set_value(why.error());
    } else {
      sink->error(
          net::RequestError{.request_id = id, .code = why.code(), .message = why.message()});
    }
  };
  if (Status valid = check_request(id, submit); !valid.is_ok()) return refuse(valid);
  // Against the model once a worker said what it holds; otherwise again before dispatch.
  if (Status fits = fit_to_model(id, submit, model_limits()); !fits.is_ok()) return refuse(fits);
  if (client_connection != 0 && options_.max_requests_per_client > 0) {
    const auto own = static_cast<size_t>(std::count_if(
        requests_.begin(), requests_.end(),
        [&](const auto& entry) { return entry.second->client_connection == client_connection; }));
    if (own >= options_.max_requests_per_client) {
      return refuse(make_error(ErrorCode::kResourceExhausted,
                               "request " + std::to_string(id) + ": the client at " +
                                   server_->peer(client_connection) + " has " +
                                   std::to_string(own) + " requests in flight, the limit per " +
                                   "client (max requests per client " +
                                   std::to_string(options_.max_requests_per_client) + ")"));
    }
  }
  if (queue_.size() >= options_.queue_capacity) {
    return refuse(make_error(ErrorCode::kResourceExhausted,
                             "request " + std::to_string(id) + ": coordinator busy: " +
                                 std::to_string(queue_.size()) + " requests are queued (limit " +
                                 std::to_string(options_.queue_capacity) + "); try again later"));
  }
  // The request's own deadline, counted from here, when shorter than the coordinator's.
  std::chrono::milliseconds timeout = options_.request_timeout;
  const bool own_deadline =
      submit.timeout_millis > 0 && submit.timeout_millis < static_cast<uint64_t>(timeout.count());
  if (own_deadline) timeout = std::chrono::milliseconds(submit.timeout_millis);
  auto request = std::make_unique<Request>();
  request->id = id;
  request->client_connection = client_connection;
  request->submit = std::move(submit);
  request->sink = std::move(sink);
  request->submitted = Clock::now();
  request->timeout = timeout;
  request->own_deadline = own_deadline;
  request->deadline =
      start_timer(std::chrono::duration_cast<runtime::Duration>(timeout), RequestDeadline{id}, id);
  requests_[id] = std::move(request);
  queue_.push_back(id);
  if (accepted) accepted->set_value(id);
  dispatch();
}

namespace {

// The request's partition in the planner's terms; a request that names no scheme takes the
// coordinator's.
PlanRequest plan_request(const net::SubmitRequest& submit, PartitionScheme default_scheme) {
  const PartitionChoice& choice = submit.partition;
  PlanRequest request;
  request.prompt_tokens = static_cast<int64_t>(submit.prompt_tokens.size());
  request.workers = choice.workers;
  request.scheme = choice.scheme.value_or(default_scheme);
  if (request.scheme == PartitionScheme::kExplicit) {
    request.cuts.assign(choice.cuts.begin(), choice.cuts.end());
  }
  return request;
}

}  // namespace

Status CoordinatorActor::plan(Request& request) {
  std::vector<WorkerEntry*> healthy;
  for (auto& [id, worker] : workers_) healthy.push_back(worker.get());
  if (healthy.empty()) return make_error(ErrorCode::kUnavailable, "no workers");
  std::vector<PlanWorker> candidates;
  for (const WorkerEntry* worker : healthy) {
    candidates.push_back({.chain = {worker->name,
                                    worker->info.backend,
                                    {worker->info.per_token_seconds, worker->info.per_key_seconds}},
                          .active_requests = worker->requests.size()});
  }
  const bool profiled = profile_ && profile_->model.hash == model_hash_;
  if (profile_ && !profiled && !profile_mismatch_logged_) {
    profile_mismatch_logged_ = true;
    logger("coordinator")
        ->warn("profile {} is for model {}, the cluster runs {}: not used", options_.profile_path,
               profile_->model.hash, model_hash_);
  }
  const PlannerOptions limits{.min_tokens_per_worker = options_.min_tokens_per_worker,
                              .max_workers_per_request = options_.max_workers_per_request};
  RUNAHEAD_ASSIGN_OR_RETURN(
      Plan planned, runahead::plan(plan_request(request.submit, options_.partition), candidates,
                                   profiled ? &*profile_ : nullptr, limits));
  if (!planned.fallback.empty()) {
    logger("coordinator")->info("request {}: {}", request.id, planned.fallback);
  }
  request.cuts = std::move(planned.cuts);
  request.chain.clear();
  for (size_t index : planned.chain) request.chain.push_back(healthy[index]->id);
  return Status::ok();
}

void CoordinatorActor::dispatch() {
  while (!queue_.empty() && in_flight_ < options_.max_in_flight && !workers_.empty()) {
    const uint64_t id = queue_.front();
    queue_.pop_front();
    auto it = requests_.find(id);
    if (it == requests_.end()) continue;
    Request& request = *it->second;
    // Requests queued before any worker said what its model holds are checked now, before a
    // worker sees them.
    if (Status fits = fit_to_model(id, request.submit, model_limits()); !fits.is_ok()) {
      fail(id, fits.code(), fits.message());
      continue;
    }
    if (Status planned = plan(request); !planned.is_ok()) {
      fail(id, planned.code(), "request " + std::to_string(id) + ": " + planned.message());
      continue;
    }
    // The request's data-plane capability: only the workers of its chain learn it, and they
    // take no K/V block of the request without it. Request ids stay sequential (readable in
    // logs): knowing one is no use without the capability.
    std::array<uint8_t, net::kKvCapabilityBytes> capability{};
    if (Status drawn = fill_secure_random(capability); !drawn.is_ok()) {
      fail(id, ErrorCode::kInternal,
           "request " + std::to_string(id) +
               ": cannot draw its data-plane capability: " + drawn.message());
      continue;
    }
    ++in_flight_;
    std::vector<net::ChainMember> chain;
    for (uint64_t worker : request.chain) {
      chain.push_back({worker, workers_[worker]->info.data_plane_address});
      workers_[worker]->requests.push_back(id);
    }
    const auto& prompt = request.submit.prompt_tokens;
    for (size_t i = 0; i < request.chain.size(); ++i) {
      net::AssignSlice assign;
      assign.request_id = id;
      assign.chain = chain;
      assign.index = static_cast<uint32_t>(i);
      assign.slice_begin = static_cast<uint64_t>(request.cuts[i]);
      assign.slice_end = static_cast<uint64_t>(request.cuts[i + 1]);
      assign.tokens.assign(prompt.begin() + request.cuts[i], prompt.begin() + request.cuts[i + 1]);
      assign.total_prompt_tokens = prompt.size();
      assign.max_new_tokens = request.submit.max_new_tokens;
      assign.sampling = request.submit.sampling;
      assign.return_logits = request.submit.return_logits;
      assign.top_logprobs = request.submit.top_logprobs;
      assign.ignore_eos = request.submit.ignore_eos;
      assign.kv_capability = capability;
      if (i + 1 == request.chain.size()) {
        // The decoding worker needs the whole prompt for the repetition penalty.
        assign.history_tokens.assign(prompt.begin(), prompt.begin() + request.cuts[i]);
      }
      if (Status sent = send(workers_[request.chain[i]]->connection, assign); !sent.is_ok()) {
        fail(id, sent.code(),
             "request " + std::to_string(id) + ": cannot reach " + worker_name(request.chain[i]) +
                 ": " + sent.message());
        break;
      }
    }
    logger("coordinator")
        ->info("request {}: {} tokens on {} worker(s)", id, prompt.size(), request.chain.size());
  }
}

CoordinatorActor::Request* CoordinatorActor::request_of_member(uint64_t worker_id,
                                                               uint64_t request_id,
                                                               const char* kind) {
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return nullptr;  // finished or failed meanwhile: nothing to do
  Request& request = *it->second;
  if (std::find(request.chain.begin(), request.chain.end(), worker_id) == request.chain.end()) {
    warn_limited(*logger("coordinator"), "coordinator: not a member",
                 "{} sent {} for request {}, which it is not part of; ignored",
                 worker_name(worker_id), kind, request_id);
    return nullptr;
  }
  return &request;
}

void CoordinatorActor::on_slice_ready(uint64_t worker_id, const net::SliceReady& ready) {
  Request* found = request_of_member(worker_id, ready.request_id, "SliceReady");
  if (found == nullptr || !found->ready_from.insert(worker_id).second) return;
  Request& request = *found;
  request.kv_targets[worker_id] = ready.kv_target;
  request.all_direct = request.all_direct && ready.direct_to_all;
  if (request.ready_from.size() < request.chain.size() || request.started) return;
  request.started = true;
  // With every pair direct (GPUs of one host), each worker writes its own K/V straight into
  // every later worker's cache: no block waits for a hop. Two workers gain nothing from it.
  bool fan_out = request.all_direct && request.chain.size() > 2;
  for (size_t i = 1; i < request.chain.size(); ++i) {
    fan_out = fan_out && !request.kv_targets[request.chain[i]].empty();
  }
  for (size_t i = 0; i < request.chain.size(); ++i) {
    net::StartSlice start{.request_id = request.id,
                          .successor_kv_target = {},
                          .fan_out = fan_out,
                          .later_kv_targets = {}};
    if (i + 1 < request.chain.size())
      start.successor_kv_target = request.kv_targets[request.chain[i + 1]];
    for (size_t later = i + 1; fan_out && later < request.chain.size(); ++later) {
      start.later_kv_targets.push_back(request.kv_targets[request.chain[later]]);
    }
    (void)send(workers_[request.chain[i]]->connection, start);
  }
}

void CoordinatorActor::on_slice_done(uint64_t worker_id, net::SliceDone done) {
  Request* found = request_of_member(worker_id, done.request_id, "SliceDone");
  if (found == nullptr || !found->done_from.insert(worker_id).second) return;
  Request& request = *found;
  for (LayerTiming& layer : done.timeline) {
    layer.worker_id = worker_id;  // a worker speaks for itself only
    request.timeline.push_back(layer);
  }
  maybe_complete(request.id);
}

void CoordinatorActor::on_token(uint64_t worker_id, net::Token token) {
  Request* found = request_of_member(worker_id, token.request_id, "Token");
  if (found == nullptr) return;
  Request& request = *found;
  if (worker_id != request.chain.back() || request.all_tokens ||
      token.index != request.tokens.size()) {
    warn_limited(*logger("coordinator"), "coordinator: out of turn",
                 "{} sent token {} of request {} out of turn; ignored", worker_name(worker_id),
                 token.index, request.id);
    return;
  }
  if (request.tokens.empty()) {
    request.first_token = Clock::now();
    logger("coordinator")
        ->info("request {}: first token after {:.3f} ms", request.id,
               nanos_between(request.submitted, request.first_token) / 1e6);
  }
  request.tokens.push_back(token.token);
  request.all_tokens = token.is_last;
  request.sink->token(token);
  maybe_complete(request.id);
}

void CoordinatorActor::maybe_complete(uint64_t request_id) {
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return;
  Request& request = *it->second;
  if (!request.all_tokens || request.done_from.size() < request.chain.size()) return;
  net::RequestResult result;
  result.request_id = request.id;
  result.tokens = request.tokens;
  result.ttft_nanos = nanos_between(request.submitted, request.first_token);
  result.cuts.assign(request.cuts.begin(), request.cuts.end());
  result.total_nanos = nanos_between(request.submitted, Clock::now());
  result.timeline = std::move(request.timeline);
  // The timeline in the log too: per worker, compute and prefix-wait time and bytes moved.
  std::map<uint64_t, LayerTiming> per_worker;
  for (const LayerTiming& layer : result.timeline) {
    LayerTiming& total = per_worker[layer.worker_id];
    total.compute += layer.compute;
    total.wait += layer.wait;
    total.bytes_in += layer.bytes_in;
    total.bytes_out += layer.bytes_out;
  }
  std::string summary;
  for (const auto& [worker, total] : per_worker) {
    summary += fmt::format(" [{}: compute {:.3f} ms, wait {:.3f} ms, in {} B, out {} B]",
                           worker_name(worker), total.compute.count() / 1e6,
                           total.wait.count() / 1e6, total.bytes_in, total.bytes_out);
  }
  logger("coordinator")
      ->info("request {}: TTFT {:.3f} ms, {} tokens in {:.3f} ms;{}", request.id,
             result.ttft_nanos / 1e6, result.tokens.size(), result.total_nanos / 1e6, summary);
  std::shared_ptr<RequestSink> sink = request.sink;
  for (uint64_t worker : request.chain) {
    if (auto w = workers_.find(worker); w != workers_.end()) {
      std::erase(w->second->requests, request.id);
    }
  }
  cancel_timer(request.deadline);
  finish_request(request.id);
  requests_.erase(it);
  --in_flight_;
  sink->result(result);
  dispatch();
}

void CoordinatorActor::on_worker_error(uint64_t worker_id, const net::RequestError& error) {
  if (request_of_member(worker_id, error.request_id, "RequestError") == nullptr) return;
  fail(error.request_id, error.code, error.message);
}

void CoordinatorActor::cancel_on_workers(const Request& request, const std::string& reason) {
  for (uint64_t worker : request.chain) {
    auto w = workers_.find(worker);
    if (w == workers_.end()) continue;
    std::erase(w->second->requests, request.id);
    (void)send(w->second->connection, net::Cancel{.request_id = request.id, .reason = reason});
  }
}

void CoordinatorActor::fail(uint64_t request_id, ErrorCode code, const std::string& message) {
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return;
  std::unique_ptr<Request> request = std::move(it->second);
  requests_.erase(it);
  std::erase(queue_, request_id);
  if (!request->chain.empty()) {
    --in_flight_;
    cancel_on_workers(*request, message);
  }
  cancel_timer(request->deadline);
  finish_request(request_id);
  warn_limited(*logger("coordinator"), "coordinator: request failed", "request {} failed: {}",
               request_id, message);
  request->sink->error(
      net::RequestError{.request_id = request_id, .code = code, .message = message});
  dispatch();
}

void CoordinatorActor::worker_lost(uint64_t worker_id, const std::string& why) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return;
  const std::string name = worker_name(worker_id);
  logger("coordinator")->warn("{} is dead: {}", name, why);
  const std::vector<uint64_t> affected = it->second->requests;
  worker_of_connection_.erase(it->second->connection);
  server_->close(it->second->connection, make_error(ErrorCode::kUnavailable, name + " is dead"));
  workers_.erase(it);
  if (workers_.empty()) no_workers_since_ = Clock::now();
  for (uint64_t request : affected) {
    fail(request, ErrorCode::kUnavailable,
         "request " + std::to_string(request) + ": " + name + " died (" + why + ")");
  }
}

void CoordinatorActor::on_health_tick() {
  const auto stalled = liveness_.check();
  if (stalled > std::chrono::milliseconds(0)) {
    logger("coordinator")
        ->warn(
            "the coordinator did not run for {} ms (paused or stalled); its workers are "
            "judged by what arrives from now on",
            std::chrono::duration_cast<std::chrono::milliseconds>(stalled + kLivenessStep).count());
  }
  send_heartbeats();
  const auto now = liveness_.now();
  std::vector<std::pair<uint64_t, int64_t>> silent;
  for (const auto& [id, worker] : workers_) {
    const auto quiet =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - worker->last_heard);
    if (quiet > options_.heartbeat_timeout) silent.emplace_back(id, quiet.count());
  }
  for (const auto& [id, quiet] : silent) {
    worker_lost(id, "no heartbeat for " + std::to_string(quiet) + " ms");
  }
  fail_requests_without_workers(Clock::now());
}

void CoordinatorActor::fail_requests_without_workers(Clock::time_point now) {
  if (!workers_.empty()) return;
  std::vector<std::pair<uint64_t, int64_t>> expired;
  for (uint64_t id : queue_) {
    auto it = requests_.find(id);
    if (it == requests_.end()) continue;
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
        now - std::max(it->second->submitted, no_workers_since_));
    if (waited >= options_.no_worker_timeout) expired.emplace_back(id, waited.count());
  }
  for (const auto& [id, waited] : expired) {
    fail(id, ErrorCode::kUnavailable,
         "request " + std::to_string(id) + ": no worker to run it; none has been registered for " +
             std::to_string(waited) + " ms (no-worker timeout " +
             std::to_string(options_.no_worker_timeout.count()) + " ms)");
  }
}

ModelLimits CoordinatorActor::model_limits() const {
  return ModelLimits{.max_positions = max_positions_,
                     .vocab_size = vocab_size_,
                     .sliding_window = sliding_window_,
                     .model = model_hash_};
}

void CoordinatorActor::send_heartbeats() {
  const auto now = Clock::now();
  if (now - last_heartbeat_sent_ < options_.heartbeat_interval) return;
  last_heartbeat_sent_ = now;
  const net::Heartbeat beat{.sequence = ++heartbeat_sequence_,
                            .active_requests = static_cast<uint32_t>(in_flight_),
                            .free_memory_bytes = 0};
  // A peer that cannot take a heartbeat is either gone (its close is on the way) or not reading;
  // neither is worth a line per period.
  for (const auto& [connection, worker] : worker_of_connection_) {
    if (Status sent = server_->send(connection, net::ToWorker(beat)); !sent.is_ok()) {
      logger("coordinator")->debug("heartbeat to {}: {}", worker_name(worker), sent.to_string());
    }
  }
  for (const auto& [connection, sink] : client_sinks_) {
    if (Status sent = server_->send(connection, net::ToClient(beat)); !sent.is_ok()) {
      logger("coordinator")
          ->debug("heartbeat to client connection {}: {}", connection, sent.to_string());
    }
  }
}

net::StatusReply CoordinatorActor::status_reply() const {
  net::StatusReply reply;
  const auto now = liveness_.now();
  for (const auto& [id, worker] : workers_) {
    WorkerRecord record = static_cast<const WorkerRecord&>(*worker);
    record.last_heartbeat_age =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - worker->last_heard);
    record.healthy = record.last_heartbeat_age <= options_.heartbeat_timeout;
    record.active_requests = static_cast<uint32_t>(worker->requests.size());
    // Where a worker takes K/V is for the workers of its requests only (through AssignSlice),
    // never for clients: it is the first thing an injection attempt needs.
    record.info.data_plane_address.clear();
    reply.workers.push_back(std::move(record));
  }
  reply.queued_requests = static_cast<uint32_t>(queue_.size());
  reply.active_requests = static_cast<uint32_t>(in_flight_);
  reply.queue_capacity = static_cast<uint32_t>(options_.queue_capacity);
  return reply;
}

}  // namespace runahead
