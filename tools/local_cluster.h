// A whole cluster on this machine: a coordinator in this process and worker processes (this
// binary's `worker` subcommand; worker i on GPU i with device "cuda"). Used by `runahead local`
// and `runahead bench`, which share its flags.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "actors/worker.h"
#include "core/status.h"
#include "runahead/coordinator.h"

namespace runahead::cli {

struct LocalClusterOptions {
  int workers = 2;
  // What every worker gets. Device "cuda" puts worker i on GPU i; the coordinator's address,
  // the names (w0, w1, ...) and, on the CPU, a share of the cores (unless cpu_threads is set)
  // are filled in per worker.
  WorkerOptions worker;
  int64_t startup_timeout_s = 300;
  CoordinatorConfig coordinator;
};

// --workers, the workers' flags (WorkerFlagScope::kLocalCluster) and --startup-timeout; the
// coordinator's flags are the command's to choose.
void add_local_cluster_flags(CLI::App* command, LocalClusterOptions& options);

class LocalCluster {
 public:
  // Starts the coordinator and the workers and waits until all joined; errors name the worker
  // that exited or how many joined in time. Unless the options name a cluster key, it makes a
  // cluster key and a client key for itself in a private temporary directory (mode 0700) that
  // is removed once the workers have read theirs: only its own processes can join.
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
