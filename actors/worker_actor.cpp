#include "actors/worker_actor.h"

#include <unistd.h>

#include <algorithm>

#include "core/log.h"
#include "net/data/peer_memory.h"
#include "runtime/overloaded.h"

namespace runahead {
namespace {

using runtime::Overloaded;

constexpr auto kIdlePoll = std::chrono::milliseconds(50);
constexpr auto kBusyPoll = std::chrono::microseconds(200);

}  // namespace

// One request this worker takes part in.
struct WorkerActor::Request {
  uint32_t index = 0;  // position in the chain
  std::shared_ptr<SliceRun> run;
  bool finished = false;  // computed; kept until its sends stop reading the cache
  Status send_failure;    // a decoded token could not be sent: the request fails with this
};

// The most one heartbeat tick counts of the time since the previous one (see
// runtime/liveness_clock.h): at least a second, and two periods.
runtime::LivenessClock::Duration liveness_step(std::chrono::milliseconds heartbeat_interval) {
  return std::max<runtime::LivenessClock::Duration>(std::chrono::seconds(1),
                                                    2 * heartbeat_interval);
}

WorkerActor::WorkerActor(WorkerContext context)
    : context_(std::move(context)), liveness_(liveness_step(context_.options.heartbeat_interval)) {}

WorkerActor::~WorkerActor() = default;

std::string WorkerActor::describe() const {
  return "worker " + context_.options.name + " (id " + std::to_string(context_.worker_id) + ")";
}

Status WorkerActor::send(const net::ToCoordinator& message) {
  Status sent = context_.send_to_coordinator(message);
  if (!sent.is_ok()) {
    logger("worker")->warn("{}: cannot send {} to the coordinator: {}", describe(),
                           net::message_kind_name(message), sent.to_string());
  }
  return sent;
}

Status WorkerActor::on_start() {
  WorkerCompute::Outbox outbox;
  outbox.token = [me = self()](net::Token token) {
    return me.tell(TokenDecoded{std::move(token)});
  };
  outbox.finished = [me = self()](uint64_t request_id, Status status) {
    (void)me.tell(SliceFinished{request_id, std::move(status)});
  };
  compute_ = std::make_unique<WorkerCompute>(context_.options.name, *context_.transformer,
                                             *context_.compute, context_.options.prefix_timeout,
                                             std::move(outbox));
  const ModelConfig& config = context_.transformer->config();
  net::BlockLimits limits;
  limits.n_layers = static_cast<uint32_t>(config.n_layers);
  limits.bytes_per_token = 2 * static_cast<uint64_t>(config.kv_dim()) *
                           dtype_size(context_.transformer->backend().compute_dtype());
  limits.max_block_bytes = limits.bytes_per_token * static_cast<uint64_t>(config.max_positions);
  context_.data_plane->set_block_limits(limits);
  // Receiver callbacks run inside progress(), on this actor's thread.
  context_.data_plane->set_receiver(
      [this](const net::KvBlockHeader& header) -> Result<void*> {
        auto it = requests_.find(header.request_id);
        if (it == requests_.end()) {
          return make_error(ErrorCode::kNotFound, describe() + ": block for unknown request " +
                                                      std::to_string(header.request_id));
        }
        return it->second->run->resolve(header);
      },
      [this](const net::KvBlockHeader& header, Status status) {
        auto it = requests_.find(header.request_id);
        if (it != requests_.end()) it->second->run->on_block(header, std::move(status));
      });
  start_periodic(context_.options.heartbeat_interval,
                 [] { return WorkerMessage(HeartbeatTick{}); });
  start_periodic(kIdlePoll, [] { return WorkerMessage(DataPlaneTick{}); });
  const int fd = context_.data_plane->event_fd();
  if (fd >= 0) {
    event_fd_ = std::make_unique<asio::posix::stream_descriptor>(system().io(), ::dup(fd));
    wait_for_data_plane_event();
  }
  return Status::ok();
}

void WorkerActor::on_stop() {
  for (auto& [id, request] : requests_) {
    request->run->cancel(make_error(ErrorCode::kCancelled, describe() + " is stopping"));
  }
  if (event_fd_) {
    std::error_code ignored;
    event_fd_->cancel(ignored);
    event_fd_->close(ignored);
  }
}

void WorkerActor::wait_for_data_plane_event() {
  if (!event_fd_ || waiting_for_event_) return;
  waiting_for_event_ = true;
  event_fd_->async_wait(asio::posix::stream_descriptor::wait_read,
                        [me = self()](const std::error_code&) {
                          // Delivered even on error, so that the actor knows no wait is pending.
                          (void)me.tell(DataPlaneTick{DataPlaneTick::Source::kEvent});
                        });
}

void WorkerActor::drive_data_plane() {
  net::Transport& plane = *context_.data_plane;
  for (int round = 0; round < 64; ++round) {
    plane.progress();
    for (auto it = requests_.begin(); it != requests_.end();) {
      const bool sends_done = it->second->run->poll_sends();
      if (it->second->finished && sends_done) {
        it->second->run->finish_transfers();
        finish_request(it->first);
        it = requests_.erase(it);
      } else {
        ++it;
      }
    }
    if (plane.arm()) break;
  }
  maybe_rejoin();
  wait_for_data_plane_event();  // one wait at a time: a no-op while one is pending
  // While requests are in flight, poll often: sends and receives complete through progress().
  if (!requests_.empty() && !fast_tick_armed_) {
    fast_tick_armed_ = true;
    start_timer(std::chrono::duration_cast<runtime::Duration>(kBusyPoll),
                DataPlaneTick{DataPlaneTick::Source::kBusyPoll});
  }
}

void WorkerActor::on_message(WorkerMessage message) {
  std::visit(Overloaded{
                 [&](net::ControlReceived<net::ToWorker>& received) {
                   // Late messages of a connection already lost are dropped with it.
                   if (received.connection != coordinator_connection_ || coordinator_lost_) return;
                   coordinator_heard_ = liveness_.now();
                   on_control(std::move(received.message));
                 },
                 [&](net::ControlClosed& closed) { on_coordinator_closed(closed); },
                 [&](Joined& joined) { on_joined(joined); },
                 [&](IoTask& task) { task.run(); },
                 [&](DataPlaneTick& tick) {
                   switch (tick.source) {
                     case DataPlaneTick::Source::kEvent:
                       waiting_for_event_ = false;
                       break;
                     case DataPlaneTick::Source::kBusyPoll:
                       fast_tick_armed_ = false;
                       break;
                     case DataPlaneTick::Source::kIdlePoll:
                       break;
                   }
                   drive_data_plane();
                 },
                 [&](HeartbeatTick&) { on_heartbeat_tick(); },
                 [&](SliceFinished& finished) { on_slice_finished(finished); },
                 [&](TokenDecoded& decoded) { on_token_decoded(decoded); },
             },
             message);
}

void WorkerActor::on_control(net::ToWorker message) {
  std::visit(Overloaded{
                 [&](net::AssignSlice& assign) { on_assign(std::move(assign)); },
                 [&](net::StartSlice& start) { on_start_slice(start); },
                 [&](net::Cancel& cancel) { on_cancel(cancel); },
                 [&](net::Heartbeat&) {},  // the coordinator is alive: noted on arrival
             },
             message);
}

void WorkerActor::on_joined(const Joined& joined) {
  context_.worker_id = joined.worker_id;
  coordinator_connection_ = joined.connection;
  coordinator_lost_ = false;
  rejoin_requested_ = false;
  dropping_coordinator_ = false;
  coordinator_heard_ = liveness_.now();
  logger("worker")->info("{} {} the coordinator", describe(),
                         joined.rejoined ? "joined again" : "joined");
}

void WorkerActor::on_heartbeat_tick() {
  const auto stalled = liveness_.check();
  if (stalled > std::chrono::milliseconds(0)) {
    logger("worker")->warn(
        "{} did not run for {} ms (paused or stalled); the coordinator is judged by what "
        "arrives from now on",
        describe(),
        std::chrono::duration_cast<std::chrono::milliseconds>(stalled + liveness_.max_step())
            .count());
  }
  if (coordinator_connection_ == 0 || coordinator_lost_) return;
  const auto silent =
      std::chrono::duration_cast<std::chrono::milliseconds>(liveness_.now() - coordinator_heard_);
  if (silent > context_.options.coordinator_timeout) {
    if (!dropping_coordinator_ && context_.drop_coordinator) {
      dropping_coordinator_ = true;
      context_.drop_coordinator(
          make_error(ErrorCode::kTimeout,
                     "nothing heard from the coordinator at " + context_.options.coordinator +
                         " for " + std::to_string(silent.count()) + " ms (the limit is " +
                         std::to_string(context_.options.coordinator_timeout.count()) + " ms)"));
    }
    return;
  }
  net::Heartbeat beat;
  beat.active_requests = static_cast<uint32_t>(requests_.size());
  beat.free_memory_bytes = context_.transformer->backend().free_memory_bytes();
  (void)send(beat);
}

void WorkerActor::on_coordinator_closed(const net::ControlClosed& closed) {
  if (closed.connection != coordinator_connection_ || coordinator_lost_) return;
  coordinator_lost_ = true;
  lost_reason_ = closed.reason;
  logger("worker")->warn("{}: coordinator connection closed: {}; dropping {} request(s)",
                         describe(), closed.reason.to_string(), requests_.size());
  // Nobody is left to answer to: every part of a request this worker holds is dropped.
  const Status gone =
      make_error(ErrorCode::kUnavailable, describe() + ": the coordinator went away");
  for (auto& [id, request] : requests_) {
    cancel_request(id, gone.message());
    request->run->cancel(gone);
  }
  drive_data_plane();
  maybe_rejoin();
}

void WorkerActor::maybe_rejoin() {
  // Request ids are the coordinator's: a restarted one numbers from 1 again, so the old
  // requests must be gone before the worker takes new ones.
  if (!coordinator_lost_ || rejoin_requested_ || !requests_.empty()) return;
  rejoin_requested_ = true;
  // The workers' ids change too: data-plane peers are connected afresh for the new plans.
  for (const auto& [peer, address] : connected_peers_) context_.data_plane->disconnect(peer);
  connected_peers_.clear();
  if (context_.on_coordinator_lost) context_.on_coordinator_lost(lost_reason_);
}

void WorkerActor::fail_request(uint64_t request_id, const Status& status) {
  logger("worker")->warn("{}: request {} failed: {}", describe(), request_id, status.to_string());
  (void)send(net::RequestError{
      .request_id = request_id, .code = status.code(), .message = status.message()});
}

void WorkerActor::on_assign(net::AssignSlice assign) {
  const uint64_t id = assign.request_id;
  if (requests_.count(id) != 0) {
    return refuse(id, make_error(ErrorCode::kInvalidArgument, "assigned twice"));
  }
  auto plan = plan_assignment(assign, context_.worker_id, context_.transformer->config(),
                              context_.options.staging_chunk_bytes,
                              [this](const std::vector<uint8_t>& address) {
                                return net::direct_path(*context_.data_plane, address);
                              });
  if (!plan) return refuse(id, plan.status());
  for (const net::ChainMember& peer : plan->connect) {
    if (Status connected = connect_peer(id, peer); !connected.is_ok()) {
      return fail_request(id, connected);
    }
  }
  auto run = SliceRun::create(
      *context_.transformer, plan->slice, *context_.data_plane,
      [me = self()](std::function<void()> task) { (void)me.tell(IoTask{std::move(task)}); },
      context_.buffers);
  if (!run) return refuse(id, run.status());

  auto request = std::make_shared<Request>();
  request->index = assign.index;
  request->run = std::shared_ptr<SliceRun>(std::move(run).value());
  requests_[id] = request;
  announce_ready(request->run, net::SliceReady{.request_id = id,
                                               .worker_id = context_.worker_id,
                                               .index = assign.index,
                                               .kv_target = request->run->kv_target(),
                                               .direct_to_all = plan->direct_to_all});
  const bool queued = compute_->submit(SliceJob{.request_id = id,
                                                .run = request->run,
                                                .tokens = std::move(assign.tokens),
                                                .cancelled = request_token(id),
                                                .decode = std::move(plan->decode)});
  if (!queued) {
    requests_.erase(id);
    fail_request(id, make_error(ErrorCode::kUnavailable, describe() + " is stopping"));
  }
  drive_data_plane();
}

void WorkerActor::announce_ready(const std::shared_ptr<SliceRun>& run, net::SliceReady ready) {
  if (!run->host_staging_pending()) {
    (void)send(ready);
    return;
  }
  // A failed allocation fails the run, which its compute job reports.
  compute_->allocate_host_staging(run, [me = self(), this, ready, run = std::weak_ptr(run)] {
    (void)me.tell(IoTask{[this, ready, run] {
      auto it = requests_.find(ready.request_id);
      if (it != requests_.end() && it->second->run == run.lock()) (void)send(ready);
    }});
  });
}

void WorkerActor::refuse(uint64_t request_id, const Status& why) {
  fail_request(request_id,
               make_error(why.code(), describe() + ": request " + std::to_string(request_id) +
                                          ": " + why.message()));
}

Status WorkerActor::connect_peer(uint64_t request_id, const net::ChainMember& peer) {
  auto known = connected_peers_.find(peer.worker_id);
  if (known != connected_peers_.end() && known->second != peer.data_plane_address) {
    context_.data_plane->disconnect(peer.worker_id);  // the same id at a new address
    connected_peers_.erase(known);
    known = connected_peers_.end();
  }
  if (known != connected_peers_.end()) return Status::ok();
  Status connected = context_.data_plane->connect(peer.worker_id, peer.data_plane_address);
  if (!connected.is_ok()) {
    return make_error(connected.code(), describe() + ": cannot reach worker " +
                                            std::to_string(peer.worker_id) + " for request " +
                                            std::to_string(request_id) + ": " +
                                            connected.message());
  }
  connected_peers_[peer.worker_id] = peer.data_plane_address;
  return Status::ok();
}

void WorkerActor::on_token_decoded(TokenDecoded& decoded) {
  const uint64_t id = decoded.token.request_id;
  Status sent = send(std::move(decoded.token));
  if (sent.is_ok()) return;
  // The decoding stops at its next token; the request fails with why.
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  if (it->second->send_failure.is_ok()) it->second->send_failure = sent;
  it->second->run->cancel(sent);
}

void WorkerActor::on_start_slice(const net::StartSlice& start) {
  auto it = requests_.find(start.request_id);
  if (it == requests_.end()) return;  // already failed or cancelled
  it->second->run->release_sends(start.successor_kv_target, start.fan_out, start.later_kv_targets);
  drive_data_plane();
}

void WorkerActor::on_cancel(const net::Cancel& cancel) {
  auto it = requests_.find(cancel.request_id);
  if (it == requests_.end()) return;
  const Status reason =
      make_error(ErrorCode::kCancelled,
                 "request " + std::to_string(cancel.request_id) + " cancelled: " + cancel.reason);
  cancel_request(cancel.request_id, cancel.reason);
  it->second->run->cancel(reason);
}

void WorkerActor::on_slice_finished(const SliceFinished& finished) {
  auto it = requests_.find(finished.request_id);
  if (it == requests_.end()) return;
  std::shared_ptr<Request> request = it->second;
  if (finished.status.is_ok() && !request->send_failure.is_ok()) {
    fail_request(finished.request_id, request->send_failure);
  } else if (finished.status.is_ok()) {
    std::vector<LayerTiming> timeline = request->run->timeline();
    for (LayerTiming& layer : timeline) layer.worker_id = context_.worker_id;
    (void)send(net::SliceDone{.request_id = finished.request_id,
                              .worker_id = context_.worker_id,
                              .index = request->index,
                              .timeline = std::move(timeline)});
  } else if (finished.status.code() == ErrorCode::kDevice) {
    // The backend names only the device ("cuda:0" on every host): say whose and which request.
    fail_request(finished.request_id,
                 make_error(ErrorCode::kDevice, describe() + ": request " +
                                                    std::to_string(finished.request_id) + ": " +
                                                    finished.status.message()));
  } else if (finished.status.code() != ErrorCode::kCancelled) {
    fail_request(finished.request_id, finished.status);
  }
  if (!finished.status.is_ok() && finished.status.code() == ErrorCode::kDevice &&
      context_.on_device_failure) {
    logger("worker")->error("{}: device failed, leaving the cluster: {}", describe(),
                            finished.status.message());
    context_.on_device_failure(finished.status);
  }
  // Sends still in flight read from the cache: drive_data_plane() frees it once they are done.
  request->finished = true;
  drive_data_plane();
}

}  // namespace runahead
