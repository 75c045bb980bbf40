#include "net/control/peer_description.h"

#include <fmt/format.h>

namespace runahead::net {

std::string describe_peer(const Hello& hello, const std::string& address) {
  const char* role = "client";
  switch (hello.role) {
    case PeerRole::kWorker:
      role = "worker";
      break;
    case PeerRole::kClient:
      role = "client";
      break;
  }
  // Names come from the peer: keep them short and printable in logs.
  std::string name;
  for (char c : hello.name.substr(0, 64)) name += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (name.empty()) return fmt::format("{} at {}", role, address);
  return fmt::format("{} {} ({})", role, name, address);
}

}  // namespace runahead::net
