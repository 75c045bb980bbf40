#include "tools/coordinator_flags.h"

#include <cstdint>
#include <string>

namespace runahead::cli {

void add_coordinator_flags(CLI::App* command, CoordinatorConfig& config,
                           CoordinatorFlagScope scope) {
  if (scope == CoordinatorFlagScope::kAll) {
    command->add_option("--listen", config.listen, "HOST:PORT to listen on")->capture_default_str();
    command
        ->add_option("--queue", config.queue_capacity,
                     "requests that may wait; more are refused as busy")
        ->capture_default_str();
    command->add_option("--max-in-flight", config.max_in_flight, "requests on the workers at once")
        ->capture_default_str();
    command
        ->add_option_function<int64_t>(
            "--heartbeat-timeout-ms",
            [&config](int64_t ms) { config.heartbeat_timeout = std::chrono::milliseconds(ms); },
            "a worker silent this long is declared dead and its requests fail (time the "
            "coordinator itself was paused or stalled does not count)")
        ->default_str(std::to_string(config.heartbeat_timeout.count()));
    command
        ->add_option_function<int64_t>(
            "--heartbeat-ms",
            [&config](int64_t ms) { config.heartbeat_interval = std::chrono::milliseconds(ms); },
            "period of the coordinator's heartbeat to its workers and clients, by which they "
            "notice a coordinator that is gone")
        ->default_str(std::to_string(config.heartbeat_interval.count()))
        ->check(CLI::Range(int64_t{1}, int64_t{600000}));
  }
  if (scope != CoordinatorFlagScope::kProfile) {
    command
        ->add_option_function<std::string>(
            "--partition",
            [&config](const std::string& scheme) {
              config.balanced_partition = scheme == "balanced";
            },
            "balanced (by each worker's measured cost model) or even")
        ->check(CLI::IsMember({"balanced", "even"}))
        ->default_str(config.balanced_partition ? "balanced" : "even");
    command
        ->add_option("--min-tokens-per-worker", config.min_tokens_per_worker,
                     "shorter prompts use fewer workers")
        ->capture_default_str();
  }
  command
      ->add_option("--profile", config.profile_path,
                   "calibration profile (runahead calibrate --out): balanced requests use its "
                   "cost model, searched ones its measured partitions")
      ->check(CLI::ExistingFile);
}

}  // namespace runahead::cli
