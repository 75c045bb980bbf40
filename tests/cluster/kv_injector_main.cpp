// The third process of the K/V injection drill (kv_injection_test.cpp): reaches workers'
// data-plane endpoints over UCX and floods them with forged K/V blocks that are well-formed for
// the model (a layer in range, a payload of the right size) and name a guessable request and
// sender, but not the request's capability (which it cannot know).
//
//   kv_injector TRANSPORTS BYTES_PER_TOKEN LAYERS MAX_TOKENS GUESSED_REQUESTS SENDERS
//   ADDRESS_HEX...
//     SENDERS: comma-separated worker ids the blocks claim to come from. Floods blocks naming
//     request ids guessed in [1, GUESSED_REQUESTS] until a line on stdin names one request id
//     to aim at ("0": hold fire). At the end of stdin prints "posted P done D failed F" and
//     exits 0 (1 on bad arguments or when an endpoint cannot be reached).
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "net/data/ucx_data_plane.h"

namespace {

using runahead::net::KvBlockHeader;
using runahead::net::SendHandle;
using runahead::net::SendState;

int fail(const std::string& why) {
  std::fprintf(stderr, "kv_injector: %s\n", why.c_str());
  return 1;
}

std::vector<uint8_t> from_hex(const std::string& hex) {
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
  }
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 8) return fail("usage: see kv_injector_main.cpp");
  const std::string transports = argv[1];
  const uint64_t bytes_per_token = std::strtoull(argv[2], nullptr, 10);
  const auto layers = static_cast<uint32_t>(std::atoi(argv[3]));
  const int64_t max_tokens = std::atoll(argv[4]);
  const uint64_t guessed_requests = std::strtoull(argv[5], nullptr, 10);
  std::vector<uint64_t> senders;
  std::stringstream sender_list(argv[6]);
  for (std::string id; std::getline(sender_list, id, ',');) senders.push_back(std::stoull(id));
  if (bytes_per_token == 0 || layers == 0 || max_tokens <= 0 || senders.empty() ||
      guessed_requests == 0) {
    return fail("bad arguments");
  }
  ::fcntl(STDIN_FILENO, F_SETFL, ::fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);

  auto plane = runahead::net::UcxDataPlane::create(
      runahead::net::UcxDataPlaneOptions{.name = "injector", .transports = transports});
  if (!plane.is_ok()) return fail(plane.status().to_string());
  std::vector<runahead::net::PeerId> peers;
  for (int i = 7; i < argc; ++i) {
    const runahead::net::PeerId peer = peers.size() + 1;
    if (auto connected = (*plane)->connect(peer, from_hex(argv[i])); !connected.is_ok()) {
      return fail(connected.to_string());
    }
    peers.push_back(peer);
  }

  // Garbage that would wreck any attention it reached: huge floats.
  const std::vector<uint8_t> payload(static_cast<size_t>(max_tokens) * bytes_per_token, 0x7f);
  std::mt19937_64 random(12345);
  uint64_t posted = 0;
  uint64_t done = 0;
  uint64_t failed = 0;
  std::vector<SendHandle> in_flight;
  bool aiming = false;  // at one request id (`target`; 0: holding fire), else guessing
  uint64_t target = 0;
  std::string command;
  for (;;) {
    char input[64];
    const ssize_t got = ::read(STDIN_FILENO, input, sizeof input);
    if (got == 0) break;  // the test is done
    for (ssize_t i = 0; i < got; ++i) {
      if (input[i] != '\n') {
        command.push_back(input[i]);
        continue;
      }
      aiming = true;
      target = std::strtoull(command.c_str(), nullptr, 10);
      command.clear();
    }
    if (aiming && target == 0) {
      (*plane)->progress();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      continue;
    }
    for (int burst = 0; burst < 8 && in_flight.size() < 64; ++burst) {
      KvBlockHeader header;
      header.request_id = aiming ? target : 1 + random() % guessed_requests;
      header.layer = static_cast<uint32_t>(random() % layers);
      header.token_begin = static_cast<int64_t>(random() % static_cast<uint64_t>(max_tokens));
      header.token_end =
          header.token_begin + 1 +
          static_cast<int64_t>(random() % static_cast<uint64_t>(max_tokens - header.token_begin));
      header.payload_bytes =
          static_cast<uint64_t>(header.token_end - header.token_begin) * bytes_per_token;
      header.sender_worker = senders[random() % senders.size()];
      // A guess: random, or all zeros half the time.
      if (random() % 2 == 0) {
        for (uint8_t& byte : header.capability.bytes) byte = static_cast<uint8_t>(random());
      }
      const runahead::net::PeerId peer = peers[random() % peers.size()];
      auto handle = (*plane)->post_send(peer, header, payload.data());
      ++posted;
      if (handle.is_ok()) {
        in_flight.push_back(*handle);
      } else {
        ++failed;
      }
    }
    (*plane)->progress();
    std::vector<SendHandle> still;
    for (SendHandle handle : in_flight) {
      const SendState state = (*plane)->check(handle);
      if (state == SendState::kInFlight) {
        still.push_back(handle);
        continue;
      }
      (state == SendState::kDone ? done : failed) += 1;
      (*plane)->release(handle);
    }
    in_flight.swap(still);
    // A steady flood that leaves the (two) cores to the cluster under attack.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::printf("posted %llu done %llu failed %llu\n", static_cast<unsigned long long>(posted),
              static_cast<unsigned long long>(done), static_cast<unsigned long long>(failed));
  std::fflush(stdout);
  return 0;
}
