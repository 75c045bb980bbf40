// What the UCX data plane puts on the wire: the endpoint address it publishes and the active
// message header in front of every K/V block. Shared by the data plane and by test peers that
// speak the wire protocol directly (to send it malformed messages).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "core/status.h"
#include "net/data/transport.h"

namespace runahead::net::ucx_wire {

// Active message id of a K/V block; both ends register it.
inline constexpr unsigned kKvBlockAmId = 17;

inline constexpr uint32_t kBlockMagic = 0x564b4152;  // "RAKV"
inline constexpr uint32_t kBlockVersion = 2;         // 2: the sender's worker id and the capability
inline constexpr size_t kSenderNameBytes = 32;

// The AM header of a block; the AM data is the payload.
struct BlockHeader {
  uint32_t magic = kBlockMagic;
  uint32_t version = kBlockVersion;
  uint64_t sender = 0;                   // the sending plane's instance id
  char sender_name[kSenderNameBytes]{};  // truncated, NUL-padded; untrusted on receipt
  KvBlockHeader block;
};
static_assert(std::is_trivially_copyable_v<BlockHeader>);

// A published endpoint address: who it is and its UCP worker address.
struct Address {
  uint64_t instance = 0;
  std::string name;
  std::vector<uint8_t> worker_address;
};

inline constexpr size_t kMaxNameBytes = 256;
inline constexpr size_t kMaxWorkerAddressBytes = 64 * 1024;

std::vector<uint8_t> encode_address(const Address& address);
// Parses untrusted bytes; the error names `peer_description` and what is wrong.
[[nodiscard]] Result<Address> decode_address(const std::vector<uint8_t>& bytes,
                                             const std::string& peer_description);

// The header of an arriving K/V block (`bytes`, as UCX delivered it), checked before anything
// is written: its size, magic and version, then the block against `limits` and the payload's
// length on the wire (validate_block_header). kProtocol or kResourceExhausted when refused.
[[nodiscard]] Result<BlockHeader> decode_block_header(std::span<const uint8_t> bytes,
                                                      const BlockLimits& limits,
                                                      uint64_t payload_bytes_on_wire);
// The sender a block header names, for logs: its printable name and instance id, or "an
// unknown sender" when `bytes` is not a whole header.
std::string describe_sender(std::span<const uint8_t> bytes);

// Peer-supplied text made safe for logs: printable ASCII only, at most `max_bytes`.
std::string printable(const char* text, size_t max_bytes);

}  // namespace runahead::net::ucx_wire
