#include "actors/worker_actor.h"

#include <unistd.h>

#include <algorithm>
#include <thread>

#include "core/log.h"
#include "model/logprobs.h"
#include "model/sampler.h"
#include "net/data/peer_memory.h"
#include "runtime/overloaded.h"

namespace runahead {
namespace {

using Clock = std::chrono::steady_clock;
using runtime::Overloaded;

constexpr auto kIdlePoll = std::chrono::milliseconds(50);
constexpr auto kBusyPoll = std::chrono::microseconds(200);

}  // namespace

// One request this worker takes part in.
struct WorkerActor::Request {
  net::AssignSlice assign;
  std::shared_ptr<SliceRun> run;
  runtime::CancellationToken cancelled;
  bool last = false;
  bool finished = false;  // computed; kept until its sends stop reading the cache
  // Allocates the run's host staging copy; joined here so that it never outlives the pools.
  std::thread staging_allocation;
  ~Request() {
    if (staging_allocation.joinable()) staging_allocation.join();
  }
};

WorkerActor::WorkerActor(WorkerContext context)
    : context_(std::move(context)), workspace_(std::make_shared<Workspace>()) {}

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
                   on_control(std::move(received.message));
                 },
                 [&](net::ControlClosed& closed) {
                   logger("worker")->warn("{}: coordinator connection closed: {}", describe(),
                                          closed.reason.to_string());
                   for (auto& [id, request] : requests_) {
                     request->run->cancel(make_error(ErrorCode::kUnavailable,
                                                     describe() + ": coordinator went away"));
                   }
                   if (context_.on_coordinator_lost) context_.on_coordinator_lost(closed.reason);
                 },
                 [&](Joined& joined) {
                   context_.worker_id = joined.worker_id;
                   logger("worker")->info("{} joined the coordinator", describe());
                 },
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
                 [&](HeartbeatTick&) {
                   net::Heartbeat beat;
                   beat.active_requests = static_cast<uint32_t>(requests_.size());
                   beat.free_memory_bytes = context_.transformer->backend().free_memory_bytes();
                   (void)send(beat);
                 },
                 [&](SliceFinished& finished) { on_slice_finished(finished); },
             },
             message);
}

void WorkerActor::on_control(net::ToWorker message) {
  std::visit(Overloaded{
                 [&](net::AssignSlice& assign) { on_assign(std::move(assign)); },
                 [&](net::StartSlice& start) { on_start_slice(start); },
                 [&](net::Cancel& cancel) { on_cancel(cancel); },
             },
             message);
}

void WorkerActor::fail_request(uint64_t request_id, const Status& status) {
  logger("worker")->warn("{}: request {} failed: {}", describe(), request_id, status.to_string());
  (void)send(net::RequestError{
      .request_id = request_id, .code = status.code(), .message = status.message()});
}

void WorkerActor::on_assign(net::AssignSlice assign) {
  const uint64_t id = assign.request_id;
  const ModelConfig& config = context_.transformer->config();
  auto refuse = [&](const std::string& why, ErrorCode code = ErrorCode::kInvalidArgument) {
    fail_request(id, make_error(code, describe() + ": request " + std::to_string(id) + ": " + why));
  };
  if (requests_.count(id) != 0) return refuse("assigned twice");
  if (assign.index >= assign.chain.size()) return refuse("its position is outside the chain");
  if (assign.chain[assign.index].worker_id != context_.worker_id) {
    return refuse("the chain places another worker at this position");
  }
  if (assign.slice_begin >= assign.slice_end || assign.slice_end > assign.total_prompt_tokens) {
    return refuse("invalid slice [" + std::to_string(assign.slice_begin) + ", " +
                  std::to_string(assign.slice_end) + ") of " +
                  std::to_string(assign.total_prompt_tokens) + " tokens");
  }
  if (assign.tokens.size() != assign.slice_end - assign.slice_begin) {
    return refuse("the slice holds " + std::to_string(assign.tokens.size()) + " tokens, not " +
                  std::to_string(assign.slice_end - assign.slice_begin));
  }
  if (assign.total_prompt_tokens > static_cast<uint64_t>(config.max_positions)) {
    // Out of range, as a single process reports it (model/local_generation.cpp).
    return refuse("the prompt has " + std::to_string(assign.total_prompt_tokens) +
                      " tokens, more than the model's limit of " +
                      std::to_string(config.max_positions),
                  ErrorCode::kOutOfRange);
  }
  const bool last = assign.index + 1 == assign.chain.size();
  if (last && assign.max_new_tokens < 1) return refuse("max new tokens must be at least 1");
  // The coordinator refuses these before dispatch; a worker checks too, whoever assigns.
  if (Status window = check_sliding_window(config.sliding_window, config.architecture_name,
                                           static_cast<int64_t>(assign.total_prompt_tokens),
                                           assign.max_new_tokens);
      !window.is_ok()) {
    return refuse(window.message());
  }
  if (Status valid = assign.sampling.validate(); !valid.is_ok()) {
    return refuse(valid.message());
  }
  if (assign.top_logprobs > 0) {
    const Status valid =
        validate_top_logprobs(assign.top_logprobs, config.vocab_size, "top_logprobs");
    if (!valid.is_ok()) return refuse(valid.message());
  }

  SlicePlan plan;
  plan.request_id = id;
  plan.begin = static_cast<int64_t>(assign.slice_begin);
  plan.end = static_cast<int64_t>(assign.slice_end);
  plan.staging_chunk_bytes = context_.options.staging_chunk_bytes;
  plan.cache_tokens = last ? std::min<int64_t>(static_cast<int64_t>(assign.total_prompt_tokens) +
                                                   assign.max_new_tokens - 1,
                                               config.max_positions)
                           : plan.end;
  auto connect_to = [&](const net::ChainMember& member) -> Status {
    auto known = connected_peers_.find(member.worker_id);
    if (known != connected_peers_.end() && known->second != member.data_plane_address) {
      context_.data_plane->disconnect(member.worker_id);  // the same id at a new address
      connected_peers_.erase(known);
      known = connected_peers_.end();
    }
    if (known != connected_peers_.end()) return Status::ok();
    Status connected = context_.data_plane->connect(member.worker_id, member.data_plane_address);
    if (!connected.is_ok()) {
      return make_error(connected.code(), describe() + ": cannot reach worker " +
                                              std::to_string(member.worker_id) + " for request " +
                                              std::to_string(id) + ": " + connected.message());
    }
    connected_peers_[member.worker_id] = member.data_plane_address;
    return Status::ok();
  };
  // Whether every other worker of the chain can be written directly (and write here): then the
  // coordinator may have each worker send its own K/V to all later ones at once.
  bool direct_to_all = assign.chain.size() > 1;
  for (size_t i = 0; i < assign.chain.size(); ++i) {
    if (i == assign.index) continue;
    direct_to_all =
        direct_to_all && net::direct_path(*context_.data_plane, assign.chain[i].data_plane_address);
  }
  if (!last) {
    const net::ChainMember& next = assign.chain[assign.index + 1];
    plan.successor = next.worker_id;
    plan.hold_sends = true;
    plan.outbound = net::direct_path(*context_.data_plane, next.data_plane_address)
                        ? KvRoute::kDirectWrite
                        : KvRoute::kSend;
    for (size_t i = assign.index + 1; i < assign.chain.size(); ++i) {
      plan.later_workers.push_back(assign.chain[i].worker_id);
    }
    for (size_t i = assign.index + 1; i < assign.chain.size(); ++i) {
      if (i > assign.index + 1 && !direct_to_all) break;  // later ones only for fan-out
      if (Status connected = connect_to(assign.chain[i]); !connected.is_ok()) {
        return fail_request(id, connected);
      }
    }
  }
  if (assign.index > 0) {
    plan.inbound =
        net::direct_path(*context_.data_plane, assign.chain[assign.index - 1].data_plane_address)
            ? KvRoute::kDirectWrite
            : KvRoute::kSend;
  }
  auto run = SliceRun::create(
      *context_.transformer, plan, *context_.data_plane,
      [me = self()](std::function<void()> task) { (void)me.tell(IoTask{std::move(task)}); },
      context_.buffers);
  if (!run) {
    return fail_request(
        id, make_error(run.error().code, describe() + ": request " + std::to_string(id) + ": " +
                                             run.error().message));
  }
  auto request = std::make_shared<Request>();
  request->assign = std::move(assign);
  request->run = std::shared_ptr<SliceRun>(std::move(run).value());
  request->cancelled = request_token(id);
  request->last = last;
  requests_[id] = request;
  const net::SliceReady ready{.request_id = id,
                              .worker_id = context_.worker_id,
                              .index = request->assign.index,
                              .kv_target = request->run->kv_target(),
                              .direct_to_all = direct_to_all};
  if (request->run->host_staging_pending()) {
    // Page-locking the host staging copy (gigabytes for long prompts) takes seconds: off this
    // thread, which must keep answering heartbeats. Ready once it is there; a failure fails
    // the run, which the compute thread reports.
    request->staging_allocation = std::thread([run = request->run, ready, me = self(), this] {
      if (run->allocate_host_staging().is_ok()) {
        (void)me.tell(IoTask{[this, run, ready] {
          auto it = requests_.find(ready.request_id);
          if (it != requests_.end() && it->second->run == run) (void)send(ready);
        }});
      }
    });
  } else {
    (void)send(ready);
  }

  // The computation, on the compute thread, in arrival order.
  const Transformer* transformer = context_.transformer;
  const WorkerContext& context = context_;
  auto workspace = workspace_;
  const bool queued =
      context_.compute->push([request, transformer, &context, workspace, me = self()] {
        const net::AssignSlice& a = request->assign;
        SliceRun& slice_run = *request->run;
        const auto n = static_cast<int64_t>(a.tokens.size());
        auto finish = [&](Status status) {
          (void)me.tell(SliceFinished{a.request_id, std::move(status)});
        };
        if (request->cancelled.cancelled()) return finish(request->cancelled.status());
        if (workspace->capacity < n) {
          auto grown = transformer->make_workspace(n);
          if (!grown) return finish(grown.status());
          *workspace = std::move(grown).value();
        }
        const auto deadline = Clock::now() + context.options.prefix_timeout;
        Status status = slice_run.run(a.tokens, *workspace, deadline);
        if (!status.is_ok()) return finish(status);
        if (!request->last)
          return finish(slice_run.wait_sends(Clock::now() + context.options.prefix_timeout));

        // Last in the chain: the first token, then decoding on the complete cache.
        const ModelConfig& model_config = transformer->config();
        const int64_t prompt_tokens = static_cast<int64_t>(a.total_prompt_tokens);
        const int64_t to_generate =
            std::min<int64_t>(a.max_new_tokens, slice_run.cache().capacity() - prompt_tokens + 1);
        Sampler sampler(a.sampling);
        std::vector<int32_t> history(a.history_tokens.begin(), a.history_tokens.end());
        history.insert(history.end(), a.tokens.begin(), a.tokens.end());
        std::vector<float> logits;
        for (int64_t index = 0; index < to_generate; ++index) {
          if (request->cancelled.cancelled()) return finish(request->cancelled.status());
          if (Status failed = slice_run.status(); !failed.is_ok()) return finish(failed);
          if (index > 0) {
            const int32_t previous = history.back();
            status = transformer->prefill_slice(std::span<const int32_t>(&previous, 1),
                                                prompt_tokens + index - 1, *workspace,
                                                slice_run.cache());
            if (!status.is_ok()) return finish(status);
          }
          // Greedy with no logits asked for: only the index leaves the backend.
          const bool device_argmax = sampler.options().greedy() &&
                                     sampler.options().repetition_penalty == 1.0f &&
                                     !a.return_logits && a.top_logprobs == 0;
          int32_t token = -1;
          if (device_argmax) {
            auto chosen = transformer->last_token_argmax(*workspace);
            if (!chosen) return finish(chosen.status());
            token = *chosen;
          } else {
            status = transformer->last_token_logits(*workspace, logits);
            if (!status.is_ok()) return finish(status);
            token = sampler.sample(logits, history);
          }
          history.push_back(token);
          const bool final =
              index + 1 == to_generate || (!a.ignore_eos && token == model_config.eos_token);
          net::Token message;
          message.request_id = a.request_id;
          message.token = token;
          message.index = static_cast<uint32_t>(index);
          message.is_last = final;
          if (a.return_logits) message.logits = logits;
          if (a.top_logprobs > 0) {
            auto position = position_logprobs(logits, token, static_cast<int>(a.top_logprobs));
            if (!position) return finish(position.status());
            message.logprob = position->logprob;
            for (const TokenLogprob& top : position->top) {
              message.top_tokens.push_back(top.token);
              message.top_logprobs.push_back(top.logprob);
            }
          }
          if (Status sent = context.send_to_coordinator(message); !sent.is_ok())
            return finish(sent);
          if (final) break;
        }
        finish(Status::ok());
      });
  if (!queued) {
    requests_.erase(id);
    fail_request(id, make_error(ErrorCode::kUnavailable, describe() + " is stopping"));
  }
  drive_data_plane();
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
  if (finished.status.is_ok()) {
    std::vector<LayerTiming> timeline = request->run->timeline();
    for (LayerTiming& layer : timeline) layer.worker_id = context_.worker_id;
    (void)send(net::SliceDone{.request_id = finished.request_id,
                              .worker_id = context_.worker_id,
                              .index = request->assign.index,
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
