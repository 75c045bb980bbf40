// The bytes a worker publishes in SliceReady so that its predecessor may write its cache
// directly (SliceRun::kv_target()): the cache's rows per layer, then the transport's exposure
// of it (net::PeerMemory::expose). Untrusted when decoded.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

namespace runahead {

struct KvTarget {
  uint64_t capacity_tokens = 0;  // rows per layer
  std::vector<uint8_t> exposure;
};

inline std::vector<uint8_t> encode_kv_target(const KvTarget& target) {
  std::vector<uint8_t> out(sizeof(target.capacity_tokens) + target.exposure.size());
  std::memcpy(out.data(), &target.capacity_tokens, sizeof(target.capacity_tokens));
  if (!target.exposure.empty()) {
    std::memcpy(out.data() + sizeof(target.capacity_tokens), target.exposure.data(),
                target.exposure.size());
  }
  return out;
}

// Nothing for bytes too short to hold an exposure or naming no rows.
inline std::optional<KvTarget> decode_kv_target(const std::vector<uint8_t>& bytes) {
  KvTarget target;
  if (bytes.size() <= sizeof(target.capacity_tokens)) return std::nullopt;
  std::memcpy(&target.capacity_tokens, bytes.data(), sizeof(target.capacity_tokens));
  if (target.capacity_tokens == 0) return std::nullopt;
  target.exposure.assign(bytes.begin() + sizeof(target.capacity_tokens), bytes.end());
  return target;
}

}  // namespace runahead
