// The other process of the two-process data plane tests.
//
//   data_plane_test_peer TRANSPORTS IN_FD OUT_FD receive CAPACITY_TOKENS BLOCKS
//     publishes its address on OUT_FD, reads the test's address from IN_FD and connects to it,
//     receives BLOCKS blocks of request 1, layer 0 into a cache of CAPACITY_TOKENS tokens of
//     1 KiB, then writes the cache's FNV-1a hash and exits 0 (1 on any failure or after 10 s).
//   data_plane_test_peer TRANSPORTS IN_FD OUT_FD stall
//     exchanges addresses, then never progresses (until killed).
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "core/fd_io.h"
#include "net/data/ucx_data_plane.h"

namespace {

using runahead::read_all;
using runahead::write_all;
using runahead::net::KvBlockHeader;

constexpr uint64_t kBytesPerToken = 1024;

uint64_t fnv1a(const std::vector<uint8_t>& bytes) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (uint8_t b : bytes) hash = (hash ^ b) * 0x100000001b3ull;
  return hash;
}

int fail(const std::string& why) {
  std::fprintf(stderr, "data_plane_test_peer: %s\n", why.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) return fail("usage: TRANSPORTS IN_FD OUT_FD receive|stall ...");
  const std::string transports = argv[1];
  const int in_fd = std::atoi(argv[2]);
  const int out_fd = std::atoi(argv[3]);
  const std::string mode = argv[4];

  auto plane = runahead::net::UcxDataPlane::create(
      runahead::net::UcxDataPlaneOptions{.name = "child", .transports = transports});
  if (!plane.is_ok()) return fail(plane.status().to_string());
  const std::vector<uint8_t> mine = (*plane)->local_address();
  const auto mine_bytes = static_cast<uint32_t>(mine.size());
  uint32_t theirs_bytes = 0;
  if (!write_all(out_fd, &mine_bytes, sizeof(mine_bytes)) ||
      !write_all(out_fd, mine.data(), mine.size()) ||
      !read_all(in_fd, &theirs_bytes, sizeof(theirs_bytes)) || theirs_bytes > (1u << 20)) {
    return fail("address exchange failed");
  }
  std::vector<uint8_t> theirs(theirs_bytes);
  if (!read_all(in_fd, theirs.data(), theirs.size())) return fail("address exchange failed");
  if (auto status = (*plane)->connect(1, theirs); !status.is_ok()) {
    return fail(status.to_string());
  }

  if (mode == "stall") {
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (mode != "receive" || argc < 7) return fail("unknown mode " + mode);
  const int64_t capacity = std::atoll(argv[5]);
  const int expected = std::atoi(argv[6]);
  if (capacity <= 0 || capacity > (1 << 20) || expected <= 0) return fail("bad arguments");

  std::vector<uint8_t> cache(static_cast<size_t>(capacity) * kBytesPerToken, 0);
  int landed = 0;
  bool failed = false;
  (*plane)->set_block_limits(runahead::net::BlockLimits{
      .n_layers = 1, .bytes_per_token = kBytesPerToken, .max_block_bytes = cache.size()});
  (*plane)->set_receiver(
      [&](const KvBlockHeader& h) -> runahead::Result<void*> {
        if (h.request_id != 1 || h.token_end > capacity) {
          return runahead::make_error(runahead::ErrorCode::kNotFound, "unexpected block");
        }
        return static_cast<void*>(cache.data() + h.token_begin * kBytesPerToken);
      },
      [&](const KvBlockHeader&, runahead::Status status) {
        ++landed;
        if (!status.is_ok()) failed = true;
      });
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (landed < expected && std::chrono::steady_clock::now() < give_up) (*plane)->progress();
  if (landed < expected || failed) return fail("blocks missing or failed");
  const uint64_t hash = fnv1a(cache);
  if (!write_all(out_fd, &hash, sizeof(hash))) return fail("cannot report");
  // Keep serving until the test closes its end, so its sends can complete cleanly.
  char byte = 0;
  while (::read(in_fd, &byte, 1) > 0) {
  }
  return 0;
}
