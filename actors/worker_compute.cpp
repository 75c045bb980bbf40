#include "actors/worker_compute.h"

#include <utility>

#include "model/decode_loop.h"

namespace runahead {
namespace {

using Clock = std::chrono::steady_clock;

net::Token token_message(uint64_t request_id, const DecodePlan& plan, DecodedToken decoded) {
  net::Token message;
  message.request_id = request_id;
  message.token = decoded.token;
  message.index = static_cast<uint32_t>(decoded.index);
  message.is_last = decoded.last;
  if (plan.return_logits) message.logits.assign(decoded.logits.begin(), decoded.logits.end());
  if (decoded.logprobs) {
    message.logprob = decoded.logprobs->logprob;
    for (const TokenLogprob& top : decoded.logprobs->top) {
      message.top_tokens.push_back(top.token);
      message.top_logprobs.push_back(top.logprob);
    }
  }
  return message;
}

}  // namespace

struct WorkerCompute::State {
  const Transformer& transformer;
  const std::chrono::milliseconds prefix_timeout;
  const Outbox outbox;
  Workspace workspace;  // compute thread only; grown to the widest slice so far

  // The slice, then its sends or its decoding.
  Status run(SliceJob& job) {
    if (job.cancelled.cancelled()) return job.cancelled.status();
    const auto n = static_cast<int64_t>(job.tokens.size());
    if (workspace.capacity < n) {
      RUNAHEAD_ASSIGN_OR_RETURN(workspace, transformer.make_workspace(n));
    }
    SliceRun& slice = *job.run;
    RUNAHEAD_RETURN_IF_ERROR(slice.run(job.tokens, workspace, Clock::now() + prefix_timeout));
    if (!job.decode) return slice.wait_sends(Clock::now() + prefix_timeout);
    return decode(job);
  }

  // Last in the chain: the first token, then decoding on the complete cache.
  Status decode(SliceJob& job) {
    DecodePlan& plan = *job.decode;
    DecodeOptions options;
    options.max_new_tokens = plan.max_new_tokens;
    options.stop_token = plan.stop_token;
    options.top_logprobs = plan.top_logprobs;
    options.sampling = plan.sampling;
    options.history = std::move(plan.history);
    options.logits_every_token = plan.return_logits;
    options.interrupted = [&job] {
      return job.cancelled.cancelled() ? job.cancelled.status() : job.run->status();
    };
    options.on_token = [&](DecodedToken decoded) -> Result<AfterToken> {
      RUNAHEAD_RETURN_IF_ERROR(
          outbox.token(token_message(job.request_id, plan, std::move(decoded))));
      return AfterToken::kContinue;
    };
    return decode_tokens(transformer, workspace, job.run->cache(), plan.prompt_tokens,
                         std::move(options));
  }
};

WorkerCompute::WorkerCompute(std::string name, const Transformer& transformer, ComputeQueue& queue,
                             std::chrono::milliseconds prefix_timeout, Outbox outbox)
    : state_(new State{transformer, prefix_timeout, std::move(outbox), Workspace{}}),
      queue_(queue),
      name_(std::move(name)) {}

WorkerCompute::~WorkerCompute() = default;

void WorkerCompute::allocate_host_staging(std::weak_ptr<SliceRun> run,
                                          std::function<void()> allocated) {
  if (!host_memory_) host_memory_ = std::make_unique<ComputeQueue>(name_ + " host memory");
  (void)host_memory_->push([run = std::move(run), allocated = std::move(allocated)] {
    std::shared_ptr<SliceRun> alive = run.lock();
    if (!alive || !alive->status().is_ok()) return;
    if (alive->allocate_host_staging().is_ok()) allocated();
  });
}

bool WorkerCompute::submit(SliceJob job) {
  return queue_.push([state = state_, job = std::move(job)]() mutable {
    const uint64_t id = job.request_id;
    state->outbox.finished(id, state->run(job));
  });
}

}  // namespace runahead
