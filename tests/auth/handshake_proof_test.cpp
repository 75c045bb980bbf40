// The handshake's MAC: HMAC-SHA-256 against the known answers of RFC 4231, and the proofs built
// on it: bound to every field of the handshake, distinct per direction (no reflection) and per
// connection (no replay), compared in constant time.
#include "net/control/handshake_proof.h"

#include <gtest/gtest.h>

#include <string>

namespace runahead::net {
namespace {

std::vector<uint8_t> bytes_of(const std::string& text) {
  return std::vector<uint8_t>(text.begin(), text.end());
}

std::string hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t byte : bytes) {
    out.push_back(kDigits[byte >> 4]);
    out.push_back(kDigits[byte & 15]);
  }
  return out;
}

ControlKey key_of(char digit) {
  auto key = ControlKey::parse(std::string(64, digit), "test key");
  EXPECT_TRUE(key.is_ok());
  return std::move(key).value();
}

// RFC 4231 section 4.2: key 0x0b x 20, "Hi There".
TEST(HandshakeProof, HmacSha256MatchesRfc4231TestCase1) {
  const std::vector<uint8_t> key(20, 0x0b);
  EXPECT_EQ(hex(hmac_sha256(key, bytes_of("Hi There"))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

// RFC 4231 section 4.3: a key shorter than the output, "Jefe".
TEST(HandshakeProof, HmacSha256MatchesRfc4231TestCase2) {
  EXPECT_EQ(hex(hmac_sha256(bytes_of("Jefe"), bytes_of("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// RFC 4231 section 4.7: a key longer than the block (hashed first).
TEST(HandshakeProof, HmacSha256MatchesRfc4231TestCase6) {
  const std::vector<uint8_t> key(131, 0xaa);
  EXPECT_EQ(
      hex(hmac_sha256(key, bytes_of("Test Using Larger Than Block-Size Key - Hash Key First"))),
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HandshakeProof, NoncesAreFreshAndFullLength) {
  auto first = make_handshake_nonce();
  auto second = make_handshake_nonce();
  ASSERT_TRUE(first.is_ok());
  ASSERT_TRUE(second.is_ok());
  EXPECT_EQ(first->size(), kHandshakeNonceBytes);
  EXPECT_NE(*first, *second);
}

struct Transcript {
  std::vector<uint8_t> peer_nonce = std::vector<uint8_t>(32, 1);
  std::vector<uint8_t> coordinator_nonce = std::vector<uint8_t>(32, 2);
  std::string name = "w1";
  PeerRole role = PeerRole::kWorker;
  uint32_t version = kProtocolVersion;

  HandshakeTranscript view() const {
    return HandshakeTranscript{.protocol_version = version,
                               .role = role,
                               .peer_name = name,
                               .peer_nonce = peer_nonce,
                               .coordinator_nonce = coordinator_nonce};
  }
};

TEST(HandshakeProof, ProofMatchesOnlyItsOwnTranscriptKeyAndDirection) {
  const ControlKey key = key_of('a');
  const Transcript base;
  const std::vector<uint8_t> proof = handshake_proof(key, Prover::kPeer, base.view());
  EXPECT_EQ(proof.size(), kHandshakeProofBytes);
  EXPECT_TRUE(handshake_proof_matches(key, Prover::kPeer, base.view(), proof));

  // Another key (a client key offered for a worker), the other direction (reflection).
  EXPECT_FALSE(handshake_proof_matches(key_of('b'), Prover::kPeer, base.view(), proof));
  EXPECT_FALSE(handshake_proof_matches(key, Prover::kCoordinator, base.view(), proof));
  EXPECT_NE(handshake_proof(key, Prover::kCoordinator, base.view()), proof);

  // Every field of the transcript counts.
  Transcript changed = base;
  changed.coordinator_nonce[31] ^= 1;  // a new connection: a replayed proof fails
  EXPECT_FALSE(handshake_proof_matches(key, Prover::kPeer, changed.view(), proof));
  changed = base;
  changed.peer_nonce[0] ^= 1;
  EXPECT_FALSE(handshake_proof_matches(key, Prover::kPeer, changed.view(), proof));
  changed = base;
  changed.role = PeerRole::kClient;
  EXPECT_FALSE(handshake_proof_matches(key, Prover::kPeer, changed.view(), proof));
  changed = base;
  changed.name = "w2";
  EXPECT_FALSE(handshake_proof_matches(key, Prover::kPeer, changed.view(), proof));
  changed = base;
  changed.version = kProtocolVersion + 1;
  EXPECT_FALSE(handshake_proof_matches(key, Prover::kPeer, changed.view(), proof));

  // Fields are length-prefixed: moving a byte from the name into a nonce changes the input.
  Transcript shifted = base;
  shifted.name = "w";
  shifted.peer_nonce.insert(shifted.peer_nonce.begin(), '1');
  EXPECT_NE(handshake_proof_input(Prover::kPeer, shifted.view()),
            handshake_proof_input(Prover::kPeer, base.view()));

  // A truncated, empty or altered proof.
  std::vector<uint8_t> altered = proof;
  altered.back() ^= 0x80;
  EXPECT_FALSE(handshake_proof_matches(key, Prover::kPeer, base.view(), altered));
  EXPECT_FALSE(handshake_proof_matches(key, Prover::kPeer, base.view(),
                                       std::span<const uint8_t>(proof.data(), proof.size() - 1)));
  EXPECT_FALSE(handshake_proof_matches(key, Prover::kPeer, base.view(), {}));
}

TEST(HandshakeProof, ProofIsTheHmacOfTheDocumentedInput) {
  const ControlKey key = key_of('c');
  const Transcript base;
  const Sha256Mac mac = hmac_sha256(key.bytes(), handshake_proof_input(Prover::kPeer, base.view()));
  EXPECT_EQ(handshake_proof(key, Prover::kPeer, base.view()),
            std::vector<uint8_t>(mac.begin(), mac.end()));
}

}  // namespace
}  // namespace runahead::net
