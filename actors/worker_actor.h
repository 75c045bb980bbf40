// The worker actor: the control side of a worker. It takes the coordinator's messages (its
// protocol is net/control/schema/control.capnp), owns the data plane and the slice runs of the
// requests this worker is part of, and queues their computation on the compute thread.
#pragma once

#include <functional>
#include <memory>
#include <unordered_map>
#include <variant>

#include <asio/posix/stream_descriptor.hpp>

#include "actors/compute_queue.h"
#include "actors/slice_run.h"
#include "actors/worker.h"
#include "actors/worker_compute.h"
#include "model/transformer.h"
#include "net/control/control_events.h"
#include "net/data/transport.h"
#include "runtime/actor.h"
#include "runtime/liveness_clock.h"

namespace runahead {

// Runs a task on the actor's thread (the one that owns the data plane).
struct IoTask {
  std::function<void()> run;
};
// The data plane may have work: its event fd fired, or one of the poll timers ticked.
struct DataPlaneTick {
  enum class Source : uint8_t { kEvent, kBusyPoll, kIdlePoll };
  Source source = Source::kIdlePoll;
};
struct HeartbeatTick {};
// The coordinator accepted this worker (first or again, on `connection`) and gave it an id.
struct Joined {
  uint64_t worker_id = 0;
  net::ConnectionId connection = 0;
  bool rejoined = false;
};
// A slice (and, for the last worker, its decoding) finished on the compute thread.
struct SliceFinished {
  uint64_t request_id = 0;
  Status status;
};
// The last worker of a chain decoded a token on the compute thread; the actor sends it on.
struct TokenDecoded {
  net::Token token;
};

using WorkerMessage =
    std::variant<net::ControlReceived<net::ToWorker>, net::ControlClosed, Joined, IoTask,
                 DataPlaneTick, HeartbeatTick, SliceFinished, TokenDecoded>;

// What the actor works with; owned by the Worker, alive longer than the actor.
struct WorkerContext {
  WorkerOptions options;
  const Transformer* transformer = nullptr;
  net::Transport* data_plane = nullptr;
  ComputeQueue* compute = nullptr;
  uint64_t worker_id = 0;
  // Sends a message to the coordinator; the actor is the only caller, so that everything the
  // coordinator hears from this worker leaves in one order through one path.
  std::function<Status(const net::ToCoordinator&)> send_to_coordinator;
  // The coordinator was lost (`reason`) and the actor has let go of every request it was part
  // of: the worker joins again.
  std::function<void(Status reason)> on_coordinator_lost;
  // Closes the coordinator connection with `reason` (it went silent); its close follows as a
  // ControlClosed.
  std::function<void(Status reason)> drop_coordinator;
  // The device failed (a CUDA fault is sticky): the worker leaves the cluster with `reason`,
  // so the coordinator plans around it instead of sending it requests that cannot succeed.
  std::function<void(Status reason)> on_device_failure;
  SliceBuffers buffers;  // pools for the slice runs' caches and host staging
};

class WorkerActor final : public runtime::Actor<WorkerMessage> {
 public:
  explicit WorkerActor(WorkerContext context);
  ~WorkerActor() override;

 protected:
  Status on_start() override;
  void on_message(WorkerMessage message) override;
  void on_stop() override;

 private:
  struct Request;

  // The coordinator's messages, one handler each.
  void on_control(net::ToWorker message);
  void on_assign(net::AssignSlice assign);
  void on_start_slice(const net::StartSlice& start);
  void on_cancel(const net::Cancel& cancel);
  void on_slice_finished(const SliceFinished& finished);
  void on_token_decoded(TokenDecoded& decoded);
  void on_joined(const Joined& joined);
  void on_heartbeat_tick();
  // The coordinator's connection closed: every request this worker is part of is cancelled;
  // once they have let go of their buffers the worker joins again (maybe_rejoin).
  void on_coordinator_closed(const net::ControlClosed& closed);
  void maybe_rejoin();
  // Sends `ready` once the run can receive: at once, or after its host staging copy is
  // allocated off this thread.
  void announce_ready(const std::shared_ptr<SliceRun>& run, net::SliceReady ready);
  // Fails the request with `why`, naming this worker and the request.
  void refuse(uint64_t request_id, const Status& why);
  // Connects the data plane to `peer` unless it is already, at that address.
  [[nodiscard]] Status connect_peer(uint64_t request_id, const net::ChainMember& peer);
  void drive_data_plane();
  void wait_for_data_plane_event();
  void fail_request(uint64_t request_id, const Status& status);
  Status send(const net::ToCoordinator& message);
  std::string describe() const;

  WorkerContext context_;
  std::unordered_map<uint64_t, std::shared_ptr<Request>> requests_;
  std::unordered_map<net::PeerId, std::vector<uint8_t>> connected_peers_;  // data-plane address
  std::unique_ptr<asio::posix::stream_descriptor> event_fd_;
  bool waiting_for_event_ = false;
  bool fast_tick_armed_ = false;
  std::unique_ptr<WorkerCompute> compute_;  // created in on_start()

  // The coordinator connection: the current one (0 before the first join), whether it was lost,
  // and when anything last arrived on it, on a clock that skips this worker's own pauses.
  net::ConnectionId coordinator_connection_ = 0;
  bool coordinator_lost_ = false;
  bool rejoin_requested_ = false;
  bool dropping_coordinator_ = false;
  Status lost_reason_;
  runtime::LivenessClock liveness_;
  runtime::LivenessClock::Duration coordinator_heard_{};
};

}  // namespace runahead
