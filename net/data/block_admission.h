// Which K/V blocks a receiver takes for one request: those of that request, from a worker its
// plan names as a sender (the predecessor in the chain; with fan-out every earlier worker),
// carrying the request's capability. Checked on every block before the receiver picks a
// destination for it, so a block that fails is never written into the cache: a process that
// reaches a worker's data-plane endpoint without the capability cannot inject K/V.
//
// A few compares per block, no copy, no allocation unless the block is refused. The capability
// is compared in constant time; refusals never name it.
#pragma once

#include <cstdint>
#include <span>

#include "core/status.h"
#include "net/data/transport.h"

namespace runahead::net {

// True when both hold the same bytes; takes the same time wherever they differ.
bool same_capability(const KvCapability& a, const KvCapability& b);

struct BlockAdmission {
  uint64_t request_id = 0;
  std::span<const uint64_t> senders;  // worker ids whose blocks are taken
  KvCapability capability{};
};

// ok, or kProtocol naming the block, its claimed sender and what does not match (another
// request, a sender the plan does not name, a wrong capability).
[[nodiscard]] Status admit_block(const KvBlockHeader& header, const BlockAdmission& admission);

}  // namespace runahead::net
