// runahead coordinator: the coordinator as a process; workers and clients connect to it.
#include <iostream>

#include "runahead/coordinator.h"
#include "tools/cli_support.h"
#include "tools/commands.h"
#include "tools/coordinator_flags.h"

namespace runahead::cli {

void add_coordinator_command(CLI::App& app) {
  auto config = std::make_shared<CoordinatorConfig>();
  config->listen = "127.0.0.1:7070";
  CLI::App* command = app.add_subcommand(
      "coordinator",
      "Run a coordinator: workers join it, clients submit prompts to it; each "
      "request is planned over the healthy workers and its tokens streamed back.");
  add_coordinator_flags(command, *config, CoordinatorFlagScope::kAll);
  command->callback([config] {
    block_termination_signals();
    auto coordinator = Coordinator::start(*config);
    if (!coordinator) {
      std::cerr << "runahead coordinator: " << coordinator.error().message << "\n";
      std::exit(1);
    }
    std::cout << "coordinator listening on " << (*coordinator)->address() << std::endl;
    wait_for_termination();
    (*coordinator)->shutdown();
  });
}

}  // namespace runahead::cli
