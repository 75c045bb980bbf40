// The embeddable coordinator: a service starts one in-process, workers (other processes, other
// hosts) join it over TCP, and the service submits prompts and gets the first token as soon as
// the last worker of the chain emits it, then the streamed continuation.
//
//   runahead::CoordinatorConfig config;
//   config.listen = "0.0.0.0:7070";
//   config.model_path = "/models/llama";  // the model workers must run
//   config.cluster_key_file = "cluster.key";  // runahead keygen cluster.key
//   config.client_key_file = "client.key";
//   auto coordinator = runahead::Coordinator::start(config);
//   runahead::RequestOptions options;
//   options.prompt_tokens = ids;
//   auto request = (*coordinator)->submit(options);
//   auto first = request->first_token();
//   while (auto token = request->next_token()) { ... }
//   auto result = request->result();  // tokens, TTFT, per-worker per-layer timeline
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "runahead/request.h"

namespace runahead {

struct CoordinatorConfig {
  std::string listen = "127.0.0.1:0";  // host:port; port 0 picks a free one
  size_t queue_capacity = 64;          // waiting requests; beyond it submit() answers busy
  size_t max_in_flight = 8;            // requests on the workers at once
  std::chrono::milliseconds request_timeout{600000};  // caps every request's own timeout
  // A request submitted while no worker is registered fails after this wait (kUnavailable).
  std::chrono::milliseconds no_worker_timeout{10000};
  // Requests one remote client may have queued or running at once (kResourceExhausted beyond
  // it; 0: no limit). Requests submitted through this object are not counted.
  size_t max_requests_per_client = 32;
  // A worker silent this long is declared dead; only time the coordinator ran counts, so a
  // coordinator that was paused does not blame its workers for the pause.
  std::chrono::milliseconds heartbeat_timeout{3000};
  // The coordinator's heartbeat to its workers and clients (they notice a vanished coordinator).
  std::chrono::milliseconds heartbeat_interval{500};
  bool balanced_partition = true;  // false: even split
  int64_t min_tokens_per_worker = 32;
  size_t max_workers_per_request = 0;  // 0: all healthy workers
  // The cluster's model: workers that run another are refused at join. One of the three is
  // required (start() says so otherwise): the hash `runahead status` shows for a worker of the
  // model, or the model itself (a checkpoint directory, .gguf file or random:PRESET, hashed as
  // workers hash it; when both are given they must agree), or adopt_first_model, which takes
  // the first worker's model, whatever it is.
  std::string expected_model_hash;
  std::string model_path;
  bool adopt_first_model = false;
  // A calibration profile (`runahead calibrate --out`); empty: none. Balanced requests are then
  // planned with its cost model, "searched" ones with its measured partitions.
  std::string profile_path;
  // Connections (docs/security.md, "Resource limits of the control plane"). A connection that
  // has not completed its Hello within handshake_timeout, or sends nothing for idle_timeout
  // after it (workers heartbeat, clients of this library send a Heartbeat every 30 s), is
  // closed; so is one whose frame buffers would take all connections' buffers together past
  // max_buffered_bytes, or that does not finish receiving or sending a frame within
  // transfer_timeout (a peer that trickles or stops reading). Zero idle_timeout: none.
  std::chrono::milliseconds handshake_timeout{5000};
  std::chrono::milliseconds idle_timeout{300000};
  std::chrono::milliseconds transfer_timeout{60000};
  size_t max_connections = 1024;
  size_t max_buffered_bytes = size_t{256} << 20;
  // Authentication (docs/security.md): workers must prove the key in cluster_key_file, clients
  // the one in client_key_file (key files as `runahead keygen` writes them; empty: that role
  // joins without a proof). Without both keys the coordinator listens on loopback addresses
  // only, unless `insecure`.
  std::string cluster_key_file;
  std::string client_key_file;
  bool insecure = false;
};

struct WorkerState {
  uint64_t id = 0;
  std::string name;
  std::string backend;
  std::string model_hash;
  bool healthy = false;
  uint64_t last_heartbeat_age_ms = 0;
  uint32_t active_requests = 0;
  uint64_t free_memory_bytes = 0;
};

struct ClusterStatus {
  std::vector<WorkerState> workers;
  uint32_t queued_requests = 0;
  uint32_t active_requests = 0;
  uint32_t queue_capacity = 0;
};

class Coordinator {
 public:
  // Listens and starts the coordinator; throws nothing, errors name the address.
  [[nodiscard]] static Result<std::unique_ptr<Coordinator>> start(const CoordinatorConfig& config);
  ~Coordinator();  // shutdown()
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // The address workers and clients connect to, with the chosen port.
  std::string address() const;

  // Accepts a request or refuses it at once, naming the limit (docs/security.md, "Admission":
  // empty prompt, bad sampling, a prompt past the model's context or vocabulary, busy);
  // answers arrive through the handle.
  [[nodiscard]] Result<RequestHandle> submit(RequestOptions options, TokenCallback on_token = {});
  // The same, streaming each token with its log-probabilities.
  [[nodiscard]] Result<RequestHandle> submit_streaming(RequestOptions options,
                                                       StreamCallback on_token);
  Status cancel(uint64_t request_id, const std::string& reason = "cancelled by the caller");
  [[nodiscard]] Result<ClusterStatus> status();
  // Waits until at least `count` workers have joined.
  [[nodiscard]] Status wait_for_workers(size_t count, std::chrono::milliseconds timeout);
  // Fails every request still running and stops. Idempotent.
  void shutdown();

  class Impl;

 private:
  explicit Coordinator(std::unique_ptr<Impl> impl);
  [[nodiscard]] Result<RequestHandle> submit_state(RequestOptions options,
                                                   std::shared_ptr<RequestHandle::State> state);
  std::unique_ptr<Impl> impl_;
};

}  // namespace runahead
