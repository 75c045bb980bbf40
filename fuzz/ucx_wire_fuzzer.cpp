// What the UCX data plane reads from a peer (net/data/ucx_wire.h): a published endpoint address
// (decode_address, through the control plane) and the header in front of every K/V block
// (decode_block_header, checked against the receiver's limits before anything is written).
// The first input byte picks one; an address that decodes must encode back to itself, and a
// block header that is accepted must satisfy every limit it was checked against.
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "net/data/ucx_wire.h"

namespace {

namespace wire = runahead::net::ucx_wire;

bool printable_only(const std::string& text) {
  for (const char c : text) {
    if (c < 0x20 || c >= 0x7f) return false;
  }
  return true;
}

void fuzz_address(std::span<const uint8_t> input) {
  const std::vector<uint8_t> bytes(input.begin(), input.end());
  auto address = wire::decode_address(bytes, "fuzz peer");
  if (!address.is_ok()) return;
  RUNAHEAD_FUZZ_CHECK(address->name.size() <= wire::kMaxNameBytes && printable_only(address->name),
                      "a decoded address has an unprintable or oversized name");
  RUNAHEAD_FUZZ_CHECK(!address->worker_address.empty() &&
                          address->worker_address.size() <= wire::kMaxWorkerAddressBytes,
                      "a decoded address has a worker address outside its limits");
  auto again = wire::decode_address(wire::encode_address(*address), "fuzz peer");
  RUNAHEAD_FUZZ_CHECK(again.is_ok() && again->instance == address->instance &&
                          again->name == address->name &&
                          again->worker_address == address->worker_address,
                      "an address changed over an encode/decode round trip");
}

// Limits and the payload length come from the input too, so that the fuzzer explores them.
template <typename T>
T take(std::span<const uint8_t>& input) {
  T value{};
  const size_t n = std::min(sizeof(T), input.size());
  std::memcpy(&value, input.data(), n);
  input = input.subspan(n);
  return value;
}

void fuzz_block_header(std::span<const uint8_t> input) {
  const auto payload_bytes = take<uint64_t>(input);
  runahead::net::BlockLimits limits;
  limits.n_layers = take<uint32_t>(input);
  limits.bytes_per_token = take<uint64_t>(input);
  limits.max_block_bytes = take<uint64_t>(input);
  const std::string sender = wire::describe_sender(input);
  RUNAHEAD_FUZZ_CHECK(printable_only(sender), "a sender's description is unprintable");
  auto header = wire::decode_block_header(input, limits, payload_bytes);
  if (!header.is_ok()) return;
  const runahead::net::KvBlockHeader& block = header->block;
  RUNAHEAD_FUZZ_CHECK(header->magic == wire::kBlockMagic && header->version == wire::kBlockVersion,
                      "a block header with a wrong magic or version was accepted");
  RUNAHEAD_FUZZ_CHECK(block.token_begin >= 0 && block.token_end > block.token_begin,
                      "a block with an empty or negative token range was accepted");
  RUNAHEAD_FUZZ_CHECK(block.layer < limits.n_layers,
                      "a block of a layer out of range was accepted");
  RUNAHEAD_FUZZ_CHECK(
      block.payload_bytes == payload_bytes && block.payload_bytes <= limits.max_block_bytes,
      "a block whose payload disagrees with the wire or the limit was accepted");
  if (limits.bytes_per_token != 0) {
    const auto tokens =
        static_cast<uint64_t>(block.token_end) - static_cast<uint64_t>(block.token_begin);
    RUNAHEAD_FUZZ_CHECK(block.payload_bytes / limits.bytes_per_token == tokens &&
                            block.payload_bytes % limits.bytes_per_token == 0,
                        "a block whose size disagrees with its tokens was accepted");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::span<const uint8_t> input(data + 1, size - 1);
  if (data[0] % 2 == 0) {
    fuzz_address(input);
  } else {
    fuzz_block_header(input);
  }
  return 0;
}
