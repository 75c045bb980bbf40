// Writes the seed inputs of the wire-format fuzz targets into fuzz/corpus/ (the files are kept
// in the repository; rerun after a format change): one control frame per message kind of each
// direction, from the codec and tests/control_plane/sample_messages.h, and UCX addresses and
// block headers.
// Usage: fuzz_write_seeds CORPUS_DIR
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "net/control/control_codec.h"
#include "net/data/ucx_wire.h"
#include "tests/control_plane/sample_messages.h"

namespace {

namespace fs = std::filesystem;
namespace wire = runahead::net::ucx_wire;

void write(const fs::path& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

template <typename T>
void append(std::vector<uint8_t>& out, const T& value) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(&value);
  out.insert(out.end(), bytes, bytes + sizeof(T));
}

// ucx_wire_fuzzer's block mode: payload length, limits, then the header as sent.
std::vector<uint8_t> block_seed(const runahead::net::KvBlockHeader& block,
                                const runahead::net::BlockLimits& limits, const char* sender) {
  std::vector<uint8_t> out{1};
  append(out, block.payload_bytes);
  append(out, limits.n_layers);
  append(out, limits.bytes_per_token);
  append(out, limits.max_block_bytes);
  wire::BlockHeader header;
  header.sender = 0x1234abcd;
  std::strncpy(header.sender_name, sender, wire::kSenderNameBytes);
  header.block = block;
  append(out, header);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_write_seeds CORPUS_DIR\n";
    return 2;
  }
  const fs::path corpus(argv[1]);
  namespace testing = runahead::net::testing;
  const runahead::net::ControlLimits limits;
  // Named by direction and kind: to_worker_AssignSlice, ...
  auto write_frame = [&](const std::string& direction, const auto& message) {
    auto frame = runahead::net::encode_frame(message, limits);
    if (!frame.is_ok()) {
      std::cerr << direction << " " << runahead::net::message_kind_name(message) << ": "
                << frame.error().to_string() << "\n";
      std::exit(1);
    }
    write(corpus / "control_frame" / (direction + "_" + runahead::net::message_kind_name(message)),
          *frame);
  };
  for (const auto& message : testing::sample_to_coordinator()) {
    write_frame("to_coordinator", message);
  }
  for (const auto& message : testing::sample_to_worker()) write_frame("to_worker", message);
  for (const auto& message : testing::sample_to_client()) write_frame("to_client", message);
  write_frame("handshake", testing::sample_hello_ack());

  wire::Address address{0x1122334455667788, "worker-0@host", {1, 2, 3, 4, 5, 6, 7, 8}};
  std::vector<uint8_t> seed{0};
  const std::vector<uint8_t> encoded = wire::encode_address(address);
  seed.insert(seed.end(), encoded.begin(), encoded.end());
  write(corpus / "ucx_wire" / "address", seed);

  const runahead::net::BlockLimits model{32, 16384, uint64_t{64} << 20};
  write(corpus / "ucx_wire" / "block",
        block_seed({7, 3, 0, 0, 128, 128 * 16384}, model, "worker-1"));
  write(corpus / "ucx_wire" / "block_unchecked_size",
        block_seed({9, 0, 5, 4096, 4100, 4096}, runahead::net::BlockLimits{}, "w"));
  return 0;
}
