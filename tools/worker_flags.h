// The flags of a worker, declared once. `runahead worker` offers all of them; the commands that
// start a cluster on this machine (`local`, `bench`) offer those that pass through to every worker
// they spawn, and the cluster renders the options back into each worker's command line.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "actors/worker.h"

namespace runahead::cli {

enum class WorkerFlagScope {
  // `runahead worker`: one worker joining a coordinator; every flag.
  kProcess,
  // The workers of a cluster on this machine: the model, the device and the K/V path. The
  // coordinator, the cluster key, each worker's name, its GPU index and its CPU threads come
  // from the cluster.
  kLocalCluster,
};

// Registers the flags of `scope` on `command`, bound to `options` (which must outlive parsing);
// the defaults shown are the values `options` holds now.
void add_worker_flags(CLI::App* command, WorkerOptions& options, WorkerFlagScope scope);

// The arguments of `runahead worker` (after the subcommand) that give a worker `options`:
// --coordinator, --model, --device and --name always, every other flag where `options` differs
// from WorkerOptions{}. Fields without a flag (timeouts) are not carried.
[[nodiscard]] std::vector<std::string> worker_arguments(const WorkerOptions& options);

}  // namespace runahead::cli
