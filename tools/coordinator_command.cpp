// runahead coordinator: the coordinator as a process; workers and clients connect to it.
#include <iostream>

#include "runahead/coordinator.h"
#include "tools/cli_support.h"
#include "tools/commands.h"

namespace runahead::cli {

void add_coordinator_command(CLI::App& app) {
  auto config = std::make_shared<CoordinatorConfig>();
  config->listen = "127.0.0.1:7070";
  auto heartbeat_ms = std::make_shared<int64_t>(config->heartbeat_timeout.count());
  auto partition = std::make_shared<std::string>("balanced");
  CLI::App* command = app.add_subcommand(
      "coordinator",
      "Run a coordinator: workers join it, clients submit prompts to it; each "
      "request is planned over the healthy workers and its tokens streamed back.");
  command->add_option("--listen", config->listen, "HOST:PORT to listen on")->capture_default_str();
  command
      ->add_option("--queue", config->queue_capacity,
                   "requests that may wait; more are refused as busy")
      ->capture_default_str();
  command->add_option("--max-in-flight", config->max_in_flight, "requests on the workers at once")
      ->capture_default_str();
  command
      ->add_option("--heartbeat-timeout-ms", *heartbeat_ms,
                   "a worker silent this long is declared dead and its requests fail")
      ->capture_default_str();
  command
      ->add_option("--partition", *partition,
                   "balanced (by each worker's measured cost model) or even")
      ->check(CLI::IsMember({"balanced", "even"}))
      ->capture_default_str();
  command
      ->add_option("--min-tokens-per-worker", config->min_tokens_per_worker,
                   "shorter prompts use fewer workers")
      ->capture_default_str();
  command
      ->add_option("--profile", config->profile_path,
                   "calibration profile (runahead calibrate --out): balanced requests use its "
                   "cost model, searched ones its measured partitions")
      ->check(CLI::ExistingFile);
  command->callback([config, heartbeat_ms, partition] {
    block_termination_signals();
    config->heartbeat_timeout = std::chrono::milliseconds(*heartbeat_ms);
    config->balanced_partition = *partition == "balanced";
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
