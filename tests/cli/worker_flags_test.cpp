// The worker's flags are declared once and rendered back into argv by the local cluster: the
// command line worker_arguments() writes must give a worker exactly the options it came from.
#include "tools/worker_flags.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace runahead::cli {
namespace {

// `args` parsed by `runahead worker`'s flags.
WorkerOptions parse_worker(const std::vector<std::string>& args) {
  WorkerOptions options;
  CLI::App app;
  add_worker_flags(&app, options, WorkerFlagScope::kProcess);
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  app.parse(reversed);
  return options;
}

void expect_same(const WorkerOptions& a, const WorkerOptions& b) {
  EXPECT_EQ(a.coordinator, b.coordinator);
  EXPECT_EQ(a.cluster_key_file, b.cluster_key_file);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.device, b.device);
  EXPECT_EQ(a.cpu_threads, b.cpu_threads);
  EXPECT_EQ(a.transports, b.transports);
  EXPECT_EQ(a.gpu_peer_copy, b.gpu_peer_copy);
  EXPECT_EQ(a.staging_chunk_bytes, b.staging_chunk_bytes);
  EXPECT_EQ(a.link_gbytes_per_second, b.link_gbytes_per_second);
  EXPECT_EQ(a.link_jitter, b.link_jitter);
  EXPECT_EQ(a.heartbeat_interval, b.heartbeat_interval);
  EXPECT_EQ(a.coordinator_timeout, b.coordinator_timeout);
  EXPECT_EQ(a.reconnect_max_backoff, b.reconnect_max_backoff);
  EXPECT_EQ(a.reconnect_give_up, b.reconnect_give_up);
  EXPECT_EQ(a.probe_tokens, b.probe_tokens);
  EXPECT_EQ(a.inject_device_fault_after_matmuls, b.inject_device_fault_after_matmuls);
}

WorkerOptions named() {
  WorkerOptions options;
  options.coordinator = "127.0.0.1:7070";
  options.name = "w3";
  options.model = "random:tiny-llama";
  return options;
}

TEST(WorkerFlagsTest, DefaultsRenderOnlyTheIdentity) {
  const WorkerOptions options = named();
  const std::vector<std::string> expected = {
      "--coordinator", "127.0.0.1:7070", "--model", "random:tiny-llama", "--device",
      "cpu",           "--name",         "w3"};
  EXPECT_EQ(worker_arguments(options), expected);
  expect_same(parse_worker(worker_arguments(options)), options);
}

TEST(WorkerFlagsTest, EveryFlagSurvivesTheRoundTrip) {
  WorkerOptions options = named();
  options.device = "cuda:2";
  options.cpu_threads = 5;
  options.transports = "shm,self";
  options.gpu_peer_copy = false;
  options.staging_chunk_bytes = 65536;
  options.link_gbytes_per_second = 0.1;
  options.link_jitter = std::chrono::microseconds(1234);
  options.heartbeat_interval = std::chrono::milliseconds(250);
  options.coordinator_timeout = std::chrono::milliseconds(4321);
  options.reconnect_max_backoff = std::chrono::milliseconds(750);
  options.reconnect_give_up = std::chrono::milliseconds(90500);
  options.probe_tokens = 0;
  options.inject_device_fault_after_matmuls = 6;
  options.cluster_key_file = "/run/keys/cluster.key";
  expect_same(parse_worker(worker_arguments(options)), options);
}

TEST(WorkerFlagsTest, ScaledValuesComeBackToTheUnit) {
  // MiB and ms on the command line, bytes and microseconds in the options: every count of the
  // smaller unit must come back, including those the decimal quotient rounds just below.
  WorkerOptions options = named();
  for (int64_t micros = 1; micros <= 3000; ++micros) {
    options.link_jitter = std::chrono::microseconds(micros);
    ASSERT_EQ(parse_worker(worker_arguments(options)).link_jitter, options.link_jitter) << micros;
  }
  for (int64_t micros :
       {int64_t{999999}, int64_t{1000001}, int64_t{123456789}, int64_t{987654321987}}) {
    options.link_jitter = std::chrono::microseconds(micros);
    EXPECT_EQ(parse_worker(worker_arguments(options)).link_jitter, options.link_jitter) << micros;
  }
  for (size_t bytes :
       {size_t{1}, size_t{4095}, size_t{1} << 20, (size_t{3} << 20) + 17, size_t{4096} << 20}) {
    options.staging_chunk_bytes = bytes;
    EXPECT_EQ(parse_worker(worker_arguments(options)).staging_chunk_bytes, bytes) << bytes;
  }
}

TEST(WorkerFlagsTest, ClusterFlagsPassThroughToEveryWorker) {
  // What `local` and `bench` accept for their workers reaches each worker unchanged.
  WorkerOptions cluster;
  CLI::App app;
  add_worker_flags(&app, cluster, WorkerFlagScope::kLocalCluster);
  app.parse(std::vector<std::string>{"0.3", "--link-jitter-ms", "7.5", "--link-gbps", "0.0625",
                                     "--staging-chunk-mib", "--no-peer-copy", "tcp", "--transports",
                                     "cuda", "--device", "random:mini-llama", "--model"});
  EXPECT_EQ(cluster.staging_chunk_bytes, size_t{65536});
  EXPECT_EQ(cluster.link_jitter, std::chrono::microseconds(300));
  WorkerOptions worker = cluster;
  worker.coordinator = "127.0.0.1:1";
  worker.name = "w0";
  worker.device = "cuda:0";
  expect_same(parse_worker(worker_arguments(worker)), worker);
}

TEST(WorkerFlagsTest, ClusterScopeLeavesPerWorkerFlagsToTheCluster) {
  for (const char* flag :
       {"--coordinator", "--name", "--threads", "--heartbeat-ms", "--coordinator-timeout-ms",
        "--reconnect-max-backoff-ms", "--reconnect-give-up-s"}) {
    WorkerOptions options;
    CLI::App app;
    add_worker_flags(&app, options, WorkerFlagScope::kLocalCluster);
    EXPECT_THROW(app.parse(std::vector<std::string>{"1", flag, "random:tiny-llama", "--model"}),
                 CLI::ParseError)
        << flag;
  }
}

}  // namespace
}  // namespace runahead::cli
