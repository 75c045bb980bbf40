// runahead worker: one worker process (one per GPU), joined to a coordinator.
#include <iostream>
#include <thread>

#include "actors/worker.h"
#include "tools/cli_support.h"
#include "tools/commands.h"

namespace runahead::cli {

void add_worker_command(CLI::App& app) {
  auto options = std::make_shared<WorkerOptions>();
  auto heartbeat_ms = std::make_shared<int64_t>(options->heartbeat_interval.count());
  CLI::App* command = app.add_subcommand(
      "worker",
      "Run a worker: load the model, join the coordinator, run the slices it assigns "
      "(K/V to and from the neighbouring workers over UCX).");
  command->add_option("--coordinator", options->coordinator, "HOST:PORT of the coordinator")
      ->required();
  command
      ->add_option("--model", options->model,
                   "checkpoint directory, .gguf file or random:PRESET (the same on every "
                   "worker: the coordinator refuses a different one)")
      ->required();
  command->add_option("--device", options->device, "cpu, cuda or cuda:N")->capture_default_str();
  command
      ->add_option("--threads", options->cpu_threads,
                   "threads of the CPU backend (0: one per core)")
      ->capture_default_str();
  command->add_option("--name", options->name, "name in logs and status")->capture_default_str();
  command->add_option("--transports", options->transports,
                      "UCX transports for K/V (UCX_TLS syntax, e.g. tcp or shm,self); "
                      "empty lets UCX choose");
  command->add_flag_callback(
      "--no-peer-copy", [options] { options->gpu_peer_copy = false; },
      "send K/V to a worker on another GPU of this host through UCX (staged through host "
      "memory) instead of copying it into that GPU's memory directly (CUDA IPC, NVLink)");
  command
      ->add_option_function<double>(
          "--staging-chunk-mib",
          [options](double mib) {
            options->staging_chunk_bytes = static_cast<size_t>(mib * 1024 * 1024);
          },
          "K/V staged through host memory moves in chunks of this many MiB, so that the copy "
          "to the host, the transfer and the copy to the next GPU overlap (0: whole blocks)")
      ->default_str("4")
      ->check(CLI::Range(0.0, 4096.0));
  command
      ->add_option("--link-gbps", options->link_gbytes_per_second,
                   "emulate a slower link: cap K/V sent to the next worker at this many GB/s "
                   "(0: no cap; for benchmarks)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  command
      ->add_option_function<double>(
          "--link-jitter-ms",
          [options](double ms) {
            options->link_jitter = std::chrono::microseconds(static_cast<int64_t>(ms * 1000));
          },
          "emulate a noisy link: delay each K/V block by a random time up to this many ms")
      ->check(CLI::NonNegativeNumber);
  command->add_option("--heartbeat-ms", *heartbeat_ms, "heartbeat period")->capture_default_str();
  command
      ->add_option("--probe-tokens", options->probe_tokens,
                   "slice length timed at start for the cost model (0: skip; -1: 32 on a CPU, 2048 "
                   "on a GPU)")
      ->capture_default_str();
  command
      ->add_option("--inject-device-fault-after-matmuls",
                   options->inject_device_fault_after_matmuls,
                   "for testing the fault path: the device fails (a sticky error, as after a "
                   "kernel fault) once N matrix products ran, counted from joining the "
                   "coordinator (start-up and its cost probe excluded) across requests; the "
                   "request then fails and the worker leaves the cluster (0: off)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  command->callback([options, heartbeat_ms] {
    block_termination_signals();
    options->heartbeat_interval = std::chrono::milliseconds(*heartbeat_ms);
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
