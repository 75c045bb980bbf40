// The compute side of a worker: runs each request's slice through the model on the compute
// queue (one job at a time, in arrival order) and, on the last worker of a chain, decodes on the
// complete cache. It tells the worker actor what happened through an Outbox that posts to the
// actor's mailbox, so that everything the coordinator hears leaves through the actor.
//
// Page-locking a run's host staging copy (gigabytes for long prompts, seconds) happens here too,
// on a thread of its own: neither the actor's thread, which answers heartbeats and drives the
// data plane, nor the compute thread, which may be decoding an earlier request, waits for it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/assignment_plan.h"
#include "actors/compute_queue.h"
#include "actors/slice_run.h"
#include "core/status.h"
#include "model/transformer.h"
#include "net/control/control_messages.h"
#include "runtime/cancellation.h"

namespace runahead {

// One request's work on the compute thread.
struct SliceJob {
  uint64_t request_id = 0;
  std::shared_ptr<SliceRun> run;
  std::vector<int32_t> tokens;  // the slice
  runtime::CancellationToken cancelled;
  std::optional<DecodePlan> decode;  // last in the chain: decode after the slice
};

class WorkerCompute {
 public:
  // Called on the compute thread; each posts to the actor's mailbox and returns at once.
  struct Outbox {
    // A decoded token for the coordinator; an error (the actor is gone) ends the decoding.
    std::function<Status(net::Token token)> token;
    // The job is over: the slice computed, its sends done, its decoding ended; or why not.
    std::function<void(uint64_t request_id, Status status)> finished;
  };

  // `prefix_timeout` bounds each wait for a predecessor's layer and for the sends at the end.
  WorkerCompute(std::string name, const Transformer& transformer, ComputeQueue& queue,
                std::chrono::milliseconds prefix_timeout, Outbox outbox);
  // Waits for a page-locking allocation under way; queued jobs keep what they need alive.
  ~WorkerCompute();
  WorkerCompute(const WorkerCompute&) = delete;
  WorkerCompute& operator=(const WorkerCompute&) = delete;

  // Allocates the run's host staging copy (SliceRun::allocate_host_staging) off the caller's
  // thread, one allocation at a time; then calls `allocated` there. Called from one thread. Skipped
  // for a run that is gone or failed by then; a failed allocation fails the run, which its job
  // reports.
  void allocate_host_staging(std::weak_ptr<SliceRun> run, std::function<void()> allocated);
  // Queues the job on the compute queue; false once the queue stopped.
  [[nodiscard]] bool submit(SliceJob job);

 private:
  struct State;  // what queued jobs use; shared with them, so it outlives this object if need be

  std::shared_ptr<State> state_;
  ComputeQueue& queue_;
  const std::string name_;
  std::unique_ptr<ComputeQueue> host_memory_;  // started at its first allocation
};

}  // namespace runahead
