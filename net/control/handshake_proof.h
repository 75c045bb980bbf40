// The proofs of the control plane's handshake: mutual challenge-response with HMAC-SHA-256
// under the key of the role the peer claims (the cluster key for a worker, the client key for
// a client).
//   peer -> coordinator: Hello {version, role, name, the peer's nonce}
//   coordinator -> peer: HelloChallenge {the coordinator's nonce, the coordinator's proof}
//   peer -> coordinator: HelloProof {the peer's proof}
//   coordinator -> peer: HelloAck
// A proof is HMAC-SHA-256 over a label naming who proves (so that a proof cannot be reflected
// back to its sender), the protocol version, the role, the peer's name and both nonces (fresh
// random bytes per connection, so that a proof belongs to one connection and a recorded one
// cannot be replayed). Proofs are compared in constant time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "net/control/control_key.h"
#include "net/control/control_messages.h"

namespace runahead::net {

inline constexpr size_t kHandshakeNonceBytes = 32;
inline constexpr size_t kHandshakeProofBytes = 32;

using Sha256Mac = std::array<uint8_t, 32>;

// HMAC-SHA-256 (RFC 2104 with SHA-256), through OpenSSL's libcrypto.
Sha256Mac hmac_sha256(std::span<const uint8_t> key, std::span<const uint8_t> message);

// Fresh random bytes from the system's random source (OpenSSL RAND_bytes).
[[nodiscard]] Result<std::vector<uint8_t>> make_handshake_nonce();

enum class Prover : uint8_t { kCoordinator, kPeer };

// What one connection's handshake agreed on, as both ends saw it.
struct HandshakeTranscript {
  uint32_t protocol_version = kProtocolVersion;
  PeerRole role = PeerRole::kClient;
  std::string_view peer_name;
  std::span<const uint8_t> peer_nonce;
  std::span<const uint8_t> coordinator_nonce;
};

// The bytes a proof is computed over (exposed for tests).
std::vector<uint8_t> handshake_proof_input(Prover prover, const HandshakeTranscript& transcript);

// The proof `prover` sends for `transcript` under `key`.
std::vector<uint8_t> handshake_proof(const ControlKey& key, Prover prover,
                                     const HandshakeTranscript& transcript);

// Whether `proof` is the one `prover` must send (constant time in the proof's bytes).
bool handshake_proof_matches(const ControlKey& key, Prover prover,
                             const HandshakeTranscript& transcript, std::span<const uint8_t> proof);

}  // namespace runahead::net
