// K/V throughput of the UCX data plane between two processes on this machine.
//
// The process forks before either side touches UCX: the child receives, the parent sends.
// Addresses go through pipes. The sender keeps `window` blocks in flight; each lands in its own
// slot of the receiver's (pre-touched) destination ring, so the numbers are the data plane's,
// not page faults'. Throughput counts payload bytes over the time from the first measured post
// to the last completion, in MiB/s like ucx_perftest.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/fd_io.h"
#include "net/data/ucx_data_plane.h"

namespace {

using runahead::read_all;
using runahead::write_all;
using runahead::net::KvBlockHeader;
using runahead::net::SendHandle;
using runahead::net::SendState;
using runahead::net::UcxDataPlane;
using runahead::net::UcxDataPlaneOptions;
using Clock = std::chrono::steady_clock;

struct Config {
  std::string transports = "tcp";
  uint64_t block_bytes = uint64_t{4096} * 2 * 4096 * 2;  // 4096 tokens of a 7B layer, bf16
  int blocks = 40;
  int warmup = 4;
  int window = 4;
  bool json = false;
};

// Publishes our address on `out`, reads the other side's from `in`.
bool exchange(const std::vector<uint8_t>& ours, int in, int out, std::vector<uint8_t>& theirs) {
  const auto bytes = static_cast<uint32_t>(ours.size());
  uint32_t their_bytes = 0;
  if (!write_all(out, &bytes, sizeof(bytes)) || !write_all(out, ours.data(), ours.size())) {
    return false;
  }
  if (!read_all(in, &their_bytes, sizeof(their_bytes)) || their_bytes > (1u << 20)) return false;
  theirs.resize(their_bytes);
  return read_all(in, theirs.data(), theirs.size());
}

std::unique_ptr<UcxDataPlane> make_plane(const Config& config, const char* name) {
  UcxDataPlaneOptions options;
  options.name = name;
  options.transports = config.transports;
  options.send_timeout = std::chrono::milliseconds(60000);
  auto plane = UcxDataPlane::create(options);
  if (!plane.is_ok()) {
    std::fprintf(stderr, "data_plane_bench: %s\n", plane.status().to_string().c_str());
    return nullptr;
  }
  return std::move(plane).value();
}

KvBlockHeader block_header(const Config& config, int index) {
  // Token range of a block of block_bytes at 16 KiB per token (7B: 2 x 4096 x bf16).
  const auto tokens = static_cast<int64_t>(config.block_bytes / 16384);
  return KvBlockHeader{.request_id = static_cast<uint64_t>(index),
                       .layer = 0,
                       .flags = 0,
                       .token_begin = 0,
                       .token_end = tokens > 0 ? tokens : 1,
                       .payload_bytes = config.block_bytes};
}

int run_receiver(const Config& config, int in, int out) {
  auto plane = make_plane(config, "bench-receiver");
  if (!plane) return 1;
  std::vector<uint8_t> theirs;
  if (!exchange(plane->local_address(), in, out, theirs)) return 1;
  std::vector<std::vector<uint8_t>> ring(static_cast<size_t>(config.window));
  for (auto& slot : ring) slot.assign(config.block_bytes, 0);  // touched: no faults later
  const int total = config.warmup + config.blocks;
  int landed = 0;
  bool failed = false;
  Clock::time_point first_measured;
  plane->set_block_limits(
      {.n_layers = 1, .bytes_per_token = 0, .max_block_bytes = config.block_bytes});
  plane->set_receiver(
      [&](const KvBlockHeader& h) -> runahead::Result<void*> {
        return static_cast<void*>(ring[h.request_id % ring.size()].data());
      },
      [&](const KvBlockHeader&, runahead::Status status) {
        if (!status.is_ok()) failed = true;
        if (++landed == config.warmup) first_measured = Clock::now();
      });
  while (landed < total && !failed) plane->progress();
  const double seconds = std::chrono::duration<double>(Clock::now() - first_measured).count();
  // Blocks after the first measured completion, over the time they took.
  const double mib_per_s = static_cast<double>(config.blocks - 1) *
                           static_cast<double>(config.block_bytes) / (1024.0 * 1024.0) / seconds;
  if (failed || !write_all(out, &mib_per_s, sizeof(mib_per_s))) return 1;
  // Serve until the sender is done with us.
  char byte = 0;
  while (::read(in, &byte, 1) > 0) {
  }
  return 0;
}

int run_sender(const Config& config, int in, int out, double& mib_per_s) {
  auto plane = make_plane(config, "bench-sender");
  if (!plane) return 1;
  std::vector<uint8_t> theirs;
  if (!exchange(plane->local_address(), in, out, theirs)) return 1;
  if (auto status = plane->connect(1, theirs); !status.is_ok()) {
    std::fprintf(stderr, "data_plane_bench: %s\n", status.to_string().c_str());
    return 1;
  }
  std::vector<uint8_t> payload(config.block_bytes);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 131);

  const int total = config.warmup + config.blocks;
  int posted = 0;
  int completed = 0;
  std::deque<SendHandle> in_flight;
  Clock::time_point start;
  while (completed < total) {
    while (static_cast<int>(in_flight.size()) < config.window && posted < total) {
      if (posted == config.warmup) {
        // Measure from a drained pipeline, as ucx_perftest does after its warm-up.
        if (!in_flight.empty()) break;
        start = Clock::now();
      }
      auto handle = plane->post_send(1, block_header(config, posted), payload.data());
      if (!handle.is_ok()) {
        std::fprintf(stderr, "data_plane_bench: %s\n", handle.status().to_string().c_str());
        return 1;
      }
      in_flight.push_back(*handle);
      ++posted;
    }
    plane->progress();
    while (!in_flight.empty()) {
      runahead::Status failure;
      const SendState state = plane->check(in_flight.front(), &failure);
      if (state == SendState::kInFlight) break;
      if (state == SendState::kFailed) {
        std::fprintf(stderr, "data_plane_bench: %s\n", failure.to_string().c_str());
        return 1;
      }
      plane->release(in_flight.front());
      in_flight.pop_front();
      ++completed;
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  mib_per_s = static_cast<double>(config.blocks) * static_cast<double>(config.block_bytes) /
              (1024.0 * 1024.0) / seconds;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config config;
  CLI::App app{"K/V block throughput of the UCX data plane between two local processes"};
  app.add_option("--transports", config.transports, "UCX_TLS for both ends (tcp, posix,sysv,...)");
  app.add_option("--block-bytes", config.block_bytes, "bytes per K/V block")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 31));
  app.add_option("--blocks", config.blocks, "measured blocks")->check(CLI::Range(2, 100000));
  app.add_option("--warmup", config.warmup, "blocks sent before measuring")
      ->check(CLI::Range(1, 100000));
  app.add_option("--window", config.window, "blocks in flight")->check(CLI::Range(1, 64));
  app.add_flag("--json", config.json, "print one JSON object");
  CLI11_PARSE(app, argc, argv);

  int to_child[2];
  int to_parent[2];
  if (::pipe(to_child) != 0 || ::pipe(to_parent) != 0) return 1;
  const pid_t child = ::fork();
  if (child < 0) return 1;
  if (child == 0) {
    ::close(to_child[1]);
    ::close(to_parent[0]);
    ::_exit(run_receiver(config, to_child[0], to_parent[1]));
  }
  ::close(to_child[0]);
  ::close(to_parent[1]);
  double sender_rate = 0.0;
  double receiver_rate = 0.0;
  int rc = run_sender(config, to_parent[0], to_child[1], sender_rate);
  if (rc == 0 && !read_all(to_parent[0], &receiver_rate, sizeof(receiver_rate))) rc = 1;
  ::close(to_child[1]);
  int status = 0;
  ::waitpid(child, &status, 0);
  if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "data_plane_bench: failed\n");
    return 1;
  }
  if (config.json) {
    std::printf(
        "{\"transports\": \"%s\", \"block_bytes\": %llu, \"blocks\": %d, \"window\": %d, "
        "\"sender_mib_per_s\": %.1f, \"receiver_mib_per_s\": %.1f}\n",
        config.transports.c_str(), static_cast<unsigned long long>(config.block_bytes),
        config.blocks, config.window, sender_rate, receiver_rate);
  } else {
    std::printf(
        "transports=%s block_bytes=%llu blocks=%d window=%d: %.1f MiB/s (sender), "
        "%.1f MiB/s (receiver)\n",
        config.transports.c_str(), static_cast<unsigned long long>(config.block_bytes),
        config.blocks, config.window, sender_rate, receiver_rate);
  }
  return 0;
}
