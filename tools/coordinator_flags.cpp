#include "tools/coordinator_flags.h"

#include <cmath>
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
            "a worker silent this long is declared dead and its requests fail (time the "
            "coordinator itself was paused or stalled does not count)")
        ->default_str(std::to_string(config.heartbeat_timeout.count()));
    // The cluster's model: one of the three is required (Coordinator::start says so).
    auto* hash = command->add_option(
        "--model-hash", config.expected_model_hash,
        "the model every worker must run: its hash as `runahead status` or a worker's log "
        "shows it; workers of another model are refused at join (default: none)");
    auto* model = command->add_option(
        "--model", config.model_path,
        "the model every worker must run, hashed here as workers hash it: a checkpoint "
        "directory, .gguf file or random:PRESET (default: none)");
    auto* adopt = command->add_flag(
        "--adopt-first-model", config.adopt_first_model,
        "take the model of the first worker that joins, whatever it is, instead of "
        "--model/--model-hash (default: off)");
    adopt->excludes(hash)->excludes(model);
    command
        ->add_option_function<double>(
            "--no-worker-timeout",
            [&config](double seconds) {
              config.no_worker_timeout = std::chrono::milliseconds(std::llround(seconds * 1000.0));
            },
            "seconds a request waits while no worker is registered before it fails")
        ->check(CLI::Range(0.0, 1e7))
        ->default_str(std::to_string(config.no_worker_timeout.count() / 1000));
    command
        ->add_option("--max-requests-per-client", config.max_requests_per_client,
                     "requests one client connection may have queued or running at once; more "
                     "are refused (0: no limit)")
        ->capture_default_str();
    command
        ->add_option_function<int64_t>(
            "--handshake-timeout-ms",
            [&config](int64_t ms) { config.handshake_timeout = std::chrono::milliseconds(ms); },
            "a connection that has not completed its Hello this long is closed")
        ->check(CLI::PositiveNumber)
        ->default_str(std::to_string(config.handshake_timeout.count()));
    command
        ->add_option_function<int64_t>(
            "--idle-timeout-ms",
            [&config](int64_t ms) { config.idle_timeout = std::chrono::milliseconds(ms); },
            "a worker or client that sends nothing this long is closed (workers heartbeat, "
            "clients send a heartbeat every 30 s); 0: never")
        ->check(CLI::NonNegativeNumber)
        ->default_str(std::to_string(config.idle_timeout.count()));
    command
        ->add_option_function<int64_t>(
            "--transfer-timeout-ms",
            [&config](int64_t ms) { config.transfer_timeout = std::chrono::milliseconds(ms); },
            "a frame must be received, or written to its peer, within this once begun: peers "
            "that trickle a frame or stop reading are closed")
        ->check(CLI::PositiveNumber)
        ->default_str(std::to_string(config.transfer_timeout.count()));
    command
        ->add_option("--max-connections", config.max_connections,
                     "control connections at once; more are closed on accept")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    command
        ->add_option_function<int64_t>(
            "--max-buffered-mib",
            [&config](int64_t mib) { config.max_buffered_bytes = static_cast<size_t>(mib) << 20; },
            "bytes all connections may hold in frame buffers together (received and queued to "
            "send); a connection that would pass it is closed")
        ->check(CLI::Range(int64_t{17}, int64_t{1} << 20))
        ->default_str(std::to_string(config.max_buffered_bytes >> 20));
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
