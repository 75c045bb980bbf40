// A worker: one per GPU (or CPU backend instance). It holds the model, joins a coordinator,
// and runs the slices the coordinator assigns: the per-layer KV-Runahead loop (SliceRun) on
// its compute thread, K/V over the data plane, and, when it is last in a request's chain, the
// first token and the decoding that follows on the complete cache.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace runahead {

struct WorkerOptions {
  std::string coordinator;  // host:port
  // The cluster key this worker proves when it joins (a key file as `runahead keygen` writes
  // it); empty: none, for a coordinator without keys.
  std::string cluster_key_file;
  std::string name = "worker";
  std::string model;  // checkpoint directory, .gguf file or random:PRESET
  std::string device = "cpu";
  int cpu_threads = 0;  // threads of the CPU backend (0: one per core)
  // UCX transports (UCX_TLS syntax, e.g. "tcp" or "shm,self"); empty lets UCX choose.
  std::string transports;
  // Between GPUs of one host, write K/V straight into the next worker's GPU memory (CUDA IPC,
  // over NVLink where the GPUs have it); false sends everything through UCX.
  bool gpu_peer_copy = true;
  // K/V staged through host memory (to a worker on another host, or with gpu_peer_copy off)
  // leaves in chunks of this many bytes, so that copying to the host, sending and copying to the
  // next GPU overlap; 0 copies each layer's block whole.
  size_t staging_chunk_bytes = size_t{4} << 20;
  // Emulated link for benchmarks: K/V to the next worker capped at this rate (0: no cap) and
  // delayed by a random jitter up to this bound per block.
  double link_gbytes_per_second = 0.0;
  std::chrono::microseconds link_jitter{0};
  std::chrono::milliseconds heartbeat_interval{500};
  std::chrono::milliseconds connect_timeout{10000};
  // The coordinator is taken for gone when nothing arrived from it for this long (it sends a
  // heartbeat every 500 ms by default); only time this worker ran counts, so a worker that was
  // paused does not blame the coordinator for the pause. A closed or reset connection is
  // noticed at once.
  std::chrono::milliseconds coordinator_timeout{10000};
  // Once the coordinator is lost the worker drops the requests it was part of, keeps its model
  // loaded, and joins again: waits between attempts double from the initial one up to the cap
  // (each shortened by up to a quarter, at random), for at most `reconnect_give_up` (zero: for
  // as long as it runs).
  std::chrono::milliseconds reconnect_initial_backoff{100};
  std::chrono::milliseconds reconnect_max_backoff{2000};
  std::chrono::milliseconds reconnect_give_up{0};
  // Longest wait for one layer of a predecessor's prefix; the coordinator normally notices a
  // dead peer sooner (heartbeats) and cancels the request.
  std::chrono::milliseconds prefix_timeout{120000};
  // Tokens of the two slices timed at start to fit the cost model (0: skip the measurement;
  // negative: by device, 32 on a CPU, 2048 on a GPU, where shorter slices only time launches).
  int64_t probe_tokens = -1;
  // For testing the fault path: the device fails as after a kernel fault once this many matrix
  // products ran, counted from when the worker joins (start-up's are not), across requests; the
  // request then fails and the worker leaves the cluster. 0: off.
  int64_t inject_device_fault_after_matmuls = 0;
};

class Worker {
 public:
  // Loads the model, measures its cost model, joins the coordinator. Errors name the model
  // file, the device or the coordinator.
  [[nodiscard]] static Result<std::unique_ptr<Worker>> start(const WorkerOptions& options);
  ~Worker();  // stop()
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  uint64_t id() const;  // as the coordinator numbered it
  // Blocks until the worker stops: stop() was called, its device failed, or the coordinator
  // stayed away past reconnect_give_up (the status says which). A lost coordinator alone does
  // not stop it: it joins again.
  Status wait();
  void stop();

  class Impl;

 private:
  explicit Worker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace runahead
