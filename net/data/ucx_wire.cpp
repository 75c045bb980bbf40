#include "net/data/ucx_wire.h"

#include <cstring>

#include <fmt/format.h>

#include "net/data/byte_codec.h"

namespace runahead::net::ucx_wire {
namespace {

constexpr uint32_t kAddressMagic = 0x44414152;  // "RAAD"
constexpr uint32_t kAddressVersion = 1;

}  // namespace

std::string printable(const char* text, size_t max_bytes) {
  std::string out;
  for (size_t i = 0; i < max_bytes && text[i] != '\0'; ++i) {
    const char c = text[i];
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  return out;
}

Result<BlockHeader> decode_block_header(std::span<const uint8_t> bytes, const BlockLimits& limits,
                                        uint64_t payload_bytes_on_wire) {
  if (bytes.size() != sizeof(BlockHeader)) {
    return make_error(ErrorCode::kProtocol, fmt::format("message header of {} bytes, expected {}",
                                                        bytes.size(), sizeof(BlockHeader)));
  }
  BlockHeader wire;
  std::memcpy(&wire, bytes.data(), sizeof(BlockHeader));
  if (wire.magic != kBlockMagic || wire.version != kBlockVersion) {
    return make_error(ErrorCode::kProtocol,
                      fmt::format("bad magic {:08x} or version {}", wire.magic, wire.version));
  }
  RUNAHEAD_RETURN_IF_ERROR(validate_block_header(wire.block, limits, payload_bytes_on_wire));
  return wire;
}

std::string describe_sender(std::span<const uint8_t> bytes) {
  if (bytes.size() != sizeof(BlockHeader)) return "an unknown sender";
  BlockHeader wire;
  std::memcpy(&wire, bytes.data(), sizeof(BlockHeader));
  return fmt::format("{} (instance {:016x})", printable(wire.sender_name, kSenderNameBytes),
                     wire.sender);
}

std::vector<uint8_t> encode_address(const Address& address) {
  const std::string name = address.name.substr(0, kMaxNameBytes);
  std::vector<uint8_t> out;
  append(out, kAddressMagic);
  append(out, kAddressVersion);
  append(out, address.instance);
  append(out, static_cast<uint16_t>(name.size()));
  out.insert(out.end(), name.begin(), name.end());
  append(out, static_cast<uint32_t>(address.worker_address.size()));
  out.insert(out.end(), address.worker_address.begin(), address.worker_address.end());
  return out;
}

Result<Address> decode_address(const std::vector<uint8_t>& bytes,
                               const std::string& peer_description) {
  auto malformed = [&](const char* what) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("address of {} ({} bytes) is malformed: {}", peer_description,
                                  bytes.size(), what));
  };
  ByteReader reader(bytes);
  uint32_t magic = 0;
  uint32_t version = 0;
  uint16_t name_bytes = 0;
  Address address;
  if (!reader.read(magic) || magic != kAddressMagic) return malformed("bad magic");
  if (!reader.read(version) || version != kAddressVersion) return malformed("unknown version");
  if (!reader.read(address.instance) || !reader.read(name_bytes)) return malformed("truncated");
  if (name_bytes > kMaxNameBytes) return malformed("name too long");
  std::vector<uint8_t> name;
  if (!reader.read_bytes(name_bytes, name)) return malformed("truncated name");
  name.push_back('\0');
  address.name = printable(reinterpret_cast<const char*>(name.data()), name.size());
  uint32_t worker_address_bytes = 0;
  if (!reader.read(worker_address_bytes)) return malformed("truncated");
  if (worker_address_bytes == 0 || worker_address_bytes > kMaxWorkerAddressBytes) {
    return malformed("worker address size out of range");
  }
  if (!reader.read_bytes(worker_address_bytes, address.worker_address) || !reader.at_end()) {
    return malformed("worker address size disagrees with the address");
  }
  return address;
}

}  // namespace runahead::net::ucx_wire
