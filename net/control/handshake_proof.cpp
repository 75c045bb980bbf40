#include "net/control/handshake_proof.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <fmt/format.h>

namespace runahead::net {
namespace {

// Distinct labels for the two directions, and a prefix naming the protocol, so that a proof
// made here cannot be taken for any other MAC made under the same key.
constexpr std::string_view kDomain = "runahead control handshake v1";
constexpr std::string_view kCoordinatorLabel = "coordinator proves";
constexpr std::string_view kPeerLabel = "peer proves";

void append_u32(std::vector<uint8_t>& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(value >> shift));
}

// Length-prefixed, so that no two transcripts encode to the same bytes.
void append_field(std::vector<uint8_t>& out, std::span<const uint8_t> bytes) {
  append_u32(out, static_cast<uint32_t>(bytes.size()));
  out.insert(out.end(), bytes.begin(), bytes.end());
}

void append_field(std::vector<uint8_t>& out, std::string_view text) {
  append_field(
      out, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

}  // namespace

Sha256Mac hmac_sha256(std::span<const uint8_t> key, std::span<const uint8_t> message) {
  Sha256Mac mac{};
  unsigned int length = 0;
  // HMAC() only fails for an unknown digest or a null output; neither happens here.
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), message.data(), message.size(),
       mac.data(), &length);
  return mac;
}

Result<std::vector<uint8_t>> make_handshake_nonce() {
  std::vector<uint8_t> nonce(kHandshakeNonceBytes);
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) {
    return make_error(ErrorCode::kInternal,
                      "the system's random source failed to give a handshake nonce");
  }
  return nonce;
}

std::vector<uint8_t> handshake_proof_input(Prover prover, const HandshakeTranscript& transcript) {
  std::vector<uint8_t> input;
  input.reserve(256);
  append_field(input, kDomain);
  append_field(input, prover == Prover::kCoordinator ? kCoordinatorLabel : kPeerLabel);
  append_u32(input, transcript.protocol_version);
  input.push_back(transcript.role == PeerRole::kWorker ? 'w' : 'c');
  append_field(input, transcript.peer_name);
  append_field(input, transcript.peer_nonce);
  append_field(input, transcript.coordinator_nonce);
  return input;
}

std::vector<uint8_t> handshake_proof(const ControlKey& key, Prover prover,
                                     const HandshakeTranscript& transcript) {
  const Sha256Mac mac = hmac_sha256(key.bytes(), handshake_proof_input(prover, transcript));
  return std::vector<uint8_t>(mac.begin(), mac.end());
}

bool handshake_proof_matches(const ControlKey& key, Prover prover,
                             const HandshakeTranscript& transcript,
                             std::span<const uint8_t> proof) {
  const Sha256Mac expected = hmac_sha256(key.bytes(), handshake_proof_input(prover, transcript));
  // The length is no secret; the bytes are compared without an early exit.
  return proof.size() == expected.size() &&
         CRYPTO_memcmp(proof.data(), expected.data(), expected.size()) == 0;
}

}  // namespace runahead::net
