// runahead worker: one worker process (one per GPU), joined to a coordinator.
#include <iostream>
#include <thread>

#include "actors/worker.h"
#include "tools/cli_support.h"
#include "tools/commands.h"
#include "tools/worker_flags.h"

namespace runahead::cli {

void add_worker_command(CLI::App& app) {
  auto options = std::make_shared<WorkerOptions>();
  CLI::App* command = app.add_subcommand(
      "worker",
      "Run a worker: load the model, join the coordinator, run the slices it assigns "
      "(K/V to and from the neighbouring workers over UCX).");
  add_worker_flags(command, *options, WorkerFlagScope::kProcess);
  command->callback([options] {
    block_termination_signals();
    auto worker = Worker::start(*options);
    if (!worker) {
      std::cerr << "runahead worker: " << worker.error().message << "\n";
      std::exit(1);
    }
    std::cerr << "worker " << options->name << " joined " << options->coordinator << " as id "
              << (*worker)->id() << std::endl;
    std::thread signals([&] {
      wait_for_termination();
      (*worker)->stop();
    });
    signals.detach();
    const Status ended = (*worker)->wait();
    (*worker)->stop();
    if (ended.code() != ErrorCode::kCancelled) {
      std::cerr << "runahead worker: " << ended.message() << "\n";
      std::exit(1);
    }
  });
}

}  // namespace runahead::cli
