// The coordinator actor: the registry of workers and their health, the request queue, the plan
// of each request (which workers, in what order, which partition), dispatch, and the answers:
// first token, streamed tokens and the result, or one error naming the worker or input at
// fault. Its protocol is net/control/schema/control.capnp; in-process callers reach it through the
// local messages below (the embeddable API).
#pragma once

#include <chrono>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <variant>

#include "actors/request_admission.h"
#include "actors/request_sink.h"
#include "core/partition_scheme.h"
#include "core/worker_record.h"
#include "net/control/control_events.h"
#include "net/control/control_server.h"
#include "planner/partition.h"
#include "planner/profile.h"
#include "runtime/actor.h"
#include "runtime/liveness_clock.h"

namespace runahead {

struct CoordinatorOptions {
  std::string listen = "127.0.0.1:0";
  size_t queue_capacity = 64;                         // requests waiting; more are refused as busy
  size_t max_in_flight = 8;                           // requests dispatched to workers at once
  std::chrono::milliseconds request_timeout{600000};  // caps every request's own deadline
  // A request waits this long for a worker when none is registered, then fails.
  std::chrono::milliseconds no_worker_timeout{10000};
  // Requests one client connection may have queued or running at once (0: no limit); callers
  // in the process are not counted.
  size_t max_requests_per_client = 32;
  // A worker from which nothing arrived for this long is declared dead. Counted only while the
  // coordinator runs (runtime/liveness_clock.h): a coordinator that was paused judges its
  // workers by what arrives after it resumes.
  std::chrono::milliseconds heartbeat_timeout{3000};
  // The coordinator's own Heartbeat to every worker and client, so that they notice it is gone.
  std::chrono::milliseconds heartbeat_interval{500};
  // The scheme of requests that name none: kBalanced or kEven.
  PartitionScheme partition = PartitionScheme::kBalanced;
  // Prompts shorter than this many tokens per worker use fewer workers (one at the least).
  int64_t min_tokens_per_worker = 32;
  size_t max_workers_per_request = 0;  // 0: every healthy worker
  // The cluster's model (api/include/runahead/coordinator.h): a hash, or, with
  // adopt_first_model, the first worker's; on_start() refuses neither.
  std::string expected_model_hash;
  bool adopt_first_model = false;
  std::string model_source;  // where the expected hash came from, for refusals
  // A calibration profile (runahead calibrate): its cost model plans balanced requests and its
  // searched partitions plan "searched" ones, while it matches the cluster's model.
  std::string profile_path;
};

struct LocalSubmit {
  net::SubmitRequest request;
  std::shared_ptr<RequestSink> sink;
  std::shared_ptr<std::promise<Result<uint64_t>>> accepted;  // the request id, or why not
};
struct LocalCancel {
  uint64_t request_id = 0;
  std::string reason;
};
struct LocalStatus {
  std::shared_ptr<std::promise<net::StatusReply>> reply;
};
struct HealthTick {};
struct RequestDeadline {
  uint64_t request_id = 0;
};

using CoordinatorMessage =
    std::variant<net::ControlReceived<net::ToCoordinator>, net::ControlClosed, LocalSubmit,
                 LocalCancel, LocalStatus, HealthTick, RequestDeadline>;

class CoordinatorActor final : public runtime::Actor<CoordinatorMessage> {
 public:
  // `server` listens already and delivers to this actor (see api/coordinator.cpp): the actor
  // answers through it from its first message on.
  CoordinatorActor(CoordinatorOptions options, std::shared_ptr<net::ControlServer> server);
  ~CoordinatorActor() override;

 protected:
  Status on_start() override;
  void on_message(CoordinatorMessage message) override;
  void on_stop() override;

 private:
  struct WorkerEntry;
  struct Request;

  // The messages to the coordinator, one handler each; those a peer's role does not send are
  // logged and ignored.
  void on_control(net::ConnectionId connection, net::ToCoordinator message);
  void on_closed(const net::ControlClosed& closed);
  void on_hello(net::ConnectionId connection, const net::Hello& hello);
  void on_submit(net::SubmitRequest request, std::shared_ptr<RequestSink> sink,
                 const std::shared_ptr<std::promise<Result<uint64_t>>>& accepted,
                 net::ConnectionId client_connection);
  // Messages about a request are taken only from the workers of its chain (tokens only from
  // the last one, in order); anything else is logged and ignored.
  Request* request_of_member(uint64_t worker_id, uint64_t request_id, const char* kind);
  void on_slice_ready(uint64_t worker_id, const net::SliceReady& ready);
  void on_slice_done(uint64_t worker_id, net::SliceDone done);
  void on_token(uint64_t worker_id, net::Token token);
  void on_worker_error(uint64_t worker_id, const net::RequestError& error);
  void on_health_tick();
  // Queued requests fail once no worker has been registered for the no-worker timeout.
  void fail_requests_without_workers(std::chrono::steady_clock::time_point now);
  ModelLimits model_limits() const;
  // Tells every worker and client that the coordinator is alive.
  void send_heartbeats();
  net::StatusReply status_reply() const;

  void dispatch();
  Status plan(Request& request);
  void worker_lost(uint64_t worker_id, const std::string& why);
  void fail(uint64_t request_id, ErrorCode code, const std::string& message);
  void maybe_complete(uint64_t request_id);
  void cancel_on_workers(const Request& request, const std::string& reason);
  Status send(net::ConnectionId connection, const net::HelloAck& message);
  Status send(net::ConnectionId connection, const net::ToWorker& message);
  Status send(net::ConnectionId connection, const net::ToClient& message);
  std::string worker_name(uint64_t worker_id) const;

  CoordinatorOptions options_;
  std::shared_ptr<net::ControlServer> server_;
  std::string model_hash_;
  // The cluster model's sliding window (0: none), from the first worker; the model hash, which
  // covers it, keeps the others equal.
  uint32_t sliding_window_ = 0;
  // The model's context and vocabulary (0: not said), from the first worker as the window.
  uint32_t max_positions_ = 0;
  uint32_t vocab_size_ = 0;
  // Since when no worker is registered (the start, or the last one lost).
  std::chrono::steady_clock::time_point no_workers_since_ = std::chrono::steady_clock::now();
  uint64_t next_peer_id_ = 1;
  uint64_t next_request_id_ = 1;
  std::map<uint64_t, std::unique_ptr<WorkerEntry>> workers_;  // by worker id
  std::map<net::ConnectionId, uint64_t> worker_of_connection_;
  std::map<net::ConnectionId, std::shared_ptr<RequestSink>> client_sinks_;  // per client link
  std::map<uint64_t, std::unique_ptr<Request>> requests_;                   // by request id
  std::deque<uint64_t> queue_;  // accepted, not dispatched yet
  size_t in_flight_ = 0;
  std::optional<Profile> profile_;
  bool profile_mismatch_logged_ = false;
  // Worker silence is measured on it; it advances at most one step per health tick.
  runtime::LivenessClock liveness_;
  std::chrono::steady_clock::time_point last_heartbeat_sent_;
  uint64_t heartbeat_sequence_ = 0;
};

}  // namespace runahead
