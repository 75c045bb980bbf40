// The embeddable coordinator: a service starts one in-process, workers (other processes, other
// hosts) join it over TCP, and the service submits prompts and gets the first token as soon as
// the last worker of the chain emits it, then the streamed continuation.
//
//   runahead::CoordinatorConfig config;
//   config.listen = "0.0.0.0:7070";
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
  std::chrono::milliseconds heartbeat_timeout{3000};  // a silent worker is declared dead
  std::chrono::milliseconds request_timeout{600000};
  bool balanced_partition = true;  // false: even split
  int64_t min_tokens_per_worker = 32;
  size_t max_workers_per_request = 0;  // 0: all healthy workers
  std::string expected_model_hash;     // empty: the first worker's model is the cluster's
  // A calibration profile (`runahead calibrate --out`); empty: none. Balanced requests are then
  // planned with its cost model, "searched" ones with its measured partitions.
  std::string profile_path;
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

  // Accepts a request (or refuses it: empty prompt, busy); answers arrive through the handle.
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
