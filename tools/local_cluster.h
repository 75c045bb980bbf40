// A whole cluster on this machine: a coordinator in this process and worker processes (this
// binary's `worker` subcommand; worker i on GPU i with device "cuda"). Used by `runahead local`
// and `runahead bench`.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "runahead/coordinator.h"

namespace runahead::cli {

struct LocalClusterOptions {
  int workers = 2;
  std::string model;
  std::string device = "cpu";  // cpu, or cuda: worker i on GPU i
  std::string transports;      // UCX_TLS of the workers' data planes; empty: UCX chooses
  bool peer_copy = true;       // GPU to GPU K/V copies between the workers (CUDA IPC)
  std::vector<std::string> extra_worker_args;
  int64_t startup_timeout_s = 300;
  CoordinatorConfig coordinator;
};

class LocalCluster {
 public:
  // Starts the coordinator and the workers and waits until all joined; errors name the worker
  // that exited or how many joined in time.
  [[nodiscard]] static Result<std::unique_ptr<LocalCluster>> start(LocalClusterOptions options);
  ~LocalCluster();  // stop()
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  Coordinator& coordinator() { return *coordinator_; }
  // A worker process that exited, with its status, or ok.
  Status check_workers();
  // Shuts the coordinator down and stops the workers (SIGTERM, then SIGKILL after 5 s).
  void stop();

 private:
  LocalCluster() = default;
  Status spawn(const LocalClusterOptions& options);

  std::unique_ptr<Coordinator> coordinator_;
  std::vector<pid_t> pids_;
};

}  // namespace runahead::cli
