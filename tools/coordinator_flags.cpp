#include "tools/coordinator_flags.h"

#include <cstdint>
#include <string>

namespace runahead::cli {

void add_coordinator_flags(CLI::App* command, CoordinatorConfig& config,
                           CoordinatorFlagScope scope) {
  if (scope == CoordinatorFlagScope::kAll) {
    command
        ->add_option("--listen", config.listen,
                     "HOST:PORT to listen on; without both key files only a loopback address "
                     "(127.0.0.1, ::1, localhost), unless --insecure")
        ->capture_default_str();
    command
        ->add_option("--cluster-key-file", config.cluster_key_file,
                     "key file (runahead keygen) of the cluster key: workers must prove it to "
                     "join (empty: workers join unauthenticated)")
        ->capture_default_str();
    command
        ->add_option("--client-key-file", config.client_key_file,
                     "key file (runahead keygen) of the client key: clients must prove it to "
                     "submit or ask for status; it must differ from the cluster key (empty: "
                     "clients connect unauthenticated)")
        ->capture_default_str();
    command
        ->add_flag("--insecure", config.insecure,
                   "listen on a non-loopback address without both keys: anyone who reaches the "
                   "port may join as a worker or submit prompts (a closed, trusted network only; "
                   "default: off)")
        ->capture_default_str();
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
            "a worker silent this long is declared dead and its requests fail")
        ->default_str(std::to_string(config.heartbeat_timeout.count()));
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
