// Who the coordinator's control server admits: peers that prove the key of the role they claim
// (net/control/handshake_proof.h), workers the cluster key, clients the client key. A role
// without a key is admitted without a proof, which is safe only where nobody else can reach
// the port: a server missing either key listens on loopback addresses only, unless `insecure`.
#pragma once

#include <optional>
#include <string>

#include "core/status.h"
#include "net/control/control_key.h"
#include "net/control/control_messages.h"

namespace runahead::net {

struct ControlAuth {
  std::optional<ControlKey> cluster_key;  // workers prove it
  std::optional<ControlKey> client_key;   // clients prove it
  // Listen on any address with a role unauthenticated (a trusted, closed network only).
  bool insecure = false;

  // The key a peer claiming `role` must prove, or null when that role needs none.
  const ControlKey* key_for(PeerRole role) const;
  // Both roles need a proof.
  bool complete() const { return cluster_key.has_value() && client_key.has_value(); }

  // Reads the key files (an empty path: no key for that role). Errors name the file, or say
  // that both name the same key: a client key must never admit a worker.
  [[nodiscard]] static Result<ControlAuth> load(const std::string& cluster_key_file,
                                                const std::string& client_key_file, bool insecure);

  // kInvalidArgument unless this may listen on `address`, whose host resolved to addresses
  // that are all loopback (`loopback_only`): without both keys only loopback is allowed,
  // unless insecure.
  [[nodiscard]] Status check_listen(const std::string& address, bool loopback_only) const;
};

}  // namespace runahead::net
