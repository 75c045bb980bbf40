#include "tools/worker_flags.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>

namespace runahead::cli {
namespace {

// What the flags in other units than WorkerOptions' turn into; worker_arguments inverts these.
size_t staging_bytes_from_mib(double mib) {
  return static_cast<size_t>(mib * 1024 * 1024);
}
std::chrono::microseconds jitter_from_ms(double ms) {
  return std::chrono::microseconds(static_cast<int64_t>(ms * 1000));
}

// A number as CLI11 reads one (strtold, then to double).
double read_number(const std::string& text) {
  return static_cast<double>(std::strtold(text.c_str(), nullptr));
}

// The shortest decimal that reads back as `value` exactly.
std::string decimal(double value) {
  char text[64];
  for (int digits = 1;; ++digits) {
    const auto end =
        std::to_chars(text, text + sizeof text, value, std::chars_format::general, digits).ptr;
    std::string out(text, end);
    if (digits >= 40 || read_number(out) == value) return out;
  }
}

// The flag value that `from_flag` (which scales and truncates) turns back into `target` units:
// the quotient, nudged up where rounding left its product just below the target.
template <typename FromFlag>
std::string flag_value_for(int64_t target, double units_per_flag_unit, FromFlag from_flag) {
  double value = static_cast<double>(target) / units_per_flag_unit;
  std::string text = decimal(value);
  for (int step = 0; step < 8 && from_flag(read_number(text)) < target; ++step) {
    value = std::nextafter(value, HUGE_VAL);
    text = decimal(value);
  }
  return text;
}

}  // namespace

void add_worker_flags(CLI::App* command, WorkerOptions& options, WorkerFlagScope scope) {
  const bool process = scope == WorkerFlagScope::kProcess;
  if (process) {
    command->add_option("--coordinator", options.coordinator, "HOST:PORT of the coordinator")
        ->required();
    command
        ->add_option("--cluster-key-file", options.cluster_key_file,
                     "key file (runahead keygen) of the cluster key this worker proves when it "
                     "joins, and that the coordinator must prove back; needed where the "
                     "coordinator has one (empty: none)")
        ->capture_default_str();
  }
  command
      ->add_option("--model", options.model,
                   process ? "checkpoint directory, .gguf file or random:PRESET (the same on "
                             "every worker: the coordinator refuses a different one)"
                           : "checkpoint directory, .gguf file or random:PRESET")
      ->required();
  command
      ->add_option("--device", options.device,
                   process ? "cpu, cuda or cuda:N" : "cpu or cuda (worker i on GPU i)")
      ->capture_default_str();
  if (process) {
    command
        ->add_option("--threads", options.cpu_threads,
                     "threads of the CPU backend (0: one per core)")
        ->capture_default_str();
    command->add_option("--name", options.name, "name in logs and status")->capture_default_str();
  }
  command->add_option("--transports", options.transports,
                      "UCX transports for K/V (UCX_TLS syntax, e.g. tcp or shm,self); "
                      "empty lets UCX choose");
  command->add_flag_callback(
      "--no-peer-copy", [&options] { options.gpu_peer_copy = false; },
      "send K/V to a worker on another GPU of this host through UCX (staged through host "
      "memory) instead of copying it into that GPU's memory directly (CUDA IPC, NVLink)");
  command
      ->add_option_function<double>(
          "--staging-chunk-mib",
          [&options](double mib) { options.staging_chunk_bytes = staging_bytes_from_mib(mib); },
          "K/V staged through host memory moves in chunks of this many MiB, so that the copy "
          "to the host, the transfer and the copy to the next GPU overlap (0: whole blocks)")
      ->default_str(decimal(static_cast<double>(options.staging_chunk_bytes) / (1024 * 1024)))
      ->check(CLI::Range(0.0, 4096.0));
  command
      ->add_option("--link-gbps", options.link_gbytes_per_second,
                   "emulate a slower link: cap K/V sent to the next worker at this many GB/s "
                   "(0: no cap; for benchmarks)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  command
      ->add_option_function<double>(
          "--link-jitter-ms", [&options](double ms) { options.link_jitter = jitter_from_ms(ms); },
          "emulate a noisy link: delay each K/V block by a random time up to this many ms")
      ->check(CLI::NonNegativeNumber);
  if (!process) return;
  command
      ->add_option_function<int64_t>(
          "--heartbeat-ms",
          [&options](int64_t ms) { options.heartbeat_interval = std::chrono::milliseconds(ms); },
          "heartbeat period")
      ->default_str(std::to_string(options.heartbeat_interval.count()));
  command
      ->add_option_function<int64_t>(
          "--coordinator-timeout-ms",
          [&options](int64_t ms) { options.coordinator_timeout = std::chrono::milliseconds(ms); },
          "the coordinator is taken for gone when nothing arrived from it for this long (only "
          "time this worker ran counts); the worker then drops its requests, keeps the model "
          "and joins again")
      ->default_str(std::to_string(options.coordinator_timeout.count()))
      ->check(CLI::Range(int64_t{1}, int64_t{3600000}));
  command
      ->add_option_function<int64_t>(
          "--reconnect-max-backoff-ms",
          [&options](int64_t ms) { options.reconnect_max_backoff = std::chrono::milliseconds(ms); },
          "after losing the coordinator, waits between attempts to join again double from " +
              std::to_string(options.reconnect_initial_backoff.count()) +
              " ms up to this cap (each shortened by up to a quarter, at random)")
      ->default_str(std::to_string(options.reconnect_max_backoff.count()))
      ->check(CLI::Range(int64_t{1}, int64_t{3600000}));
  command
      ->add_option_function<double>(
          "--reconnect-give-up-s",
          [&options](double seconds) {
            options.reconnect_give_up =
                std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
          },
          "exit (status 1) when no coordinator could be joined again for this many seconds "
          "(0: keep trying for as long as the worker runs)")
      ->default_str(decimal(static_cast<double>(options.reconnect_give_up.count()) / 1000))
      ->check(CLI::NonNegativeNumber);
  command
      ->add_option("--probe-tokens", options.probe_tokens,
                   "slice length timed at start for the cost model (0: skip; -1: 32 on a CPU, 2048 "
                   "on a GPU)")
      ->capture_default_str();
  command
      ->add_option("--inject-device-fault-after-matmuls", options.inject_device_fault_after_matmuls,
                   "for testing the fault path: the device fails (a sticky error, as after a "
                   "kernel fault) once N matrix products ran, counted from joining the "
                   "coordinator (start-up and its cost probe excluded) across requests; the "
                   "request then fails and the worker leaves the cluster (0: off)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
}

std::vector<std::string> worker_arguments(const WorkerOptions& options) {
  const WorkerOptions defaults;
  std::vector<std::string> args = {"--coordinator", options.coordinator, "--model", options.model,
                                   "--device",      options.device,      "--name",  options.name};
  auto add = [&args](const char* flag, std::string value) {
    args.emplace_back(flag);
    args.push_back(std::move(value));
  };
  if (options.cluster_key_file != defaults.cluster_key_file) {
    add("--cluster-key-file", options.cluster_key_file);
  }
  if (options.cpu_threads != defaults.cpu_threads) {
    add("--threads", std::to_string(options.cpu_threads));
  }
  if (options.transports != defaults.transports) add("--transports", options.transports);
  if (options.gpu_peer_copy != defaults.gpu_peer_copy) args.emplace_back("--no-peer-copy");
  if (options.staging_chunk_bytes != defaults.staging_chunk_bytes) {
    add("--staging-chunk-mib",
        flag_value_for(
            static_cast<int64_t>(options.staging_chunk_bytes), 1024.0 * 1024.0,
            [](double mib) { return static_cast<int64_t>(staging_bytes_from_mib(mib)); }));
  }
  if (options.link_gbytes_per_second != defaults.link_gbytes_per_second) {
    add("--link-gbps", decimal(options.link_gbytes_per_second));
  }
  if (options.link_jitter != defaults.link_jitter) {
    add("--link-jitter-ms", flag_value_for(options.link_jitter.count(), 1000.0,
                                           [](double ms) { return jitter_from_ms(ms).count(); }));
  }
  if (options.heartbeat_interval != defaults.heartbeat_interval) {
    add("--heartbeat-ms", std::to_string(options.heartbeat_interval.count()));
  }
  if (options.coordinator_timeout != defaults.coordinator_timeout) {
    add("--coordinator-timeout-ms", std::to_string(options.coordinator_timeout.count()));
  }
  if (options.reconnect_max_backoff != defaults.reconnect_max_backoff) {
    add("--reconnect-max-backoff-ms", std::to_string(options.reconnect_max_backoff.count()));
  }
  if (options.reconnect_give_up != defaults.reconnect_give_up) {
    add("--reconnect-give-up-s",
        flag_value_for(options.reconnect_give_up.count(), 1000.0,
                       [](double seconds) { return static_cast<int64_t>(seconds * 1000); }));
  }
  if (options.probe_tokens != defaults.probe_tokens) {
    add("--probe-tokens", std::to_string(options.probe_tokens));
  }
  if (options.inject_device_fault_after_matmuls != defaults.inject_device_fault_after_matmuls) {
    add("--inject-device-fault-after-matmuls",
        std::to_string(options.inject_device_fault_after_matmuls));
  }
  return args;
}

}  // namespace runahead::cli
