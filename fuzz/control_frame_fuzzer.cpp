// A control frame as it arrives on a TCP connection: the 8-byte header (net/control/frame.h), then
// the body handed to the Cap'n Proto decoder (net/control/control_codec.h) with the default limits,
// once for each direction an end receives (to the coordinator, to a worker, to a client, the
// HelloAck). At most one direction may take a frame. A message that decodes must encode again, and
// its encoding must survive a second round trip byte for byte (bytes, not operator==, so that NaN
// floats compare equal).
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "net/control/control_codec.h"
#include "net/control/frame.h"

namespace {

using runahead::ErrorCode;
using runahead::net::ControlLimits;
using runahead::net::kFrameHeaderBytes;

// The body as whole 64-bit words, aligned as the connection's buffer is.
std::vector<uint64_t> words_of(std::span<const uint8_t> bytes) {
  std::vector<uint64_t> words(bytes.size() / 8);
  if (!words.empty()) std::memcpy(words.data(), bytes.data(), words.size() * 8);
  return words;
}

// Decodes `body` as the direction Message; checks a refusal's code, or the round trip of what
// decoded. Returns whether it decoded.
template <typename Message>
bool check_direction(const std::vector<uint64_t>& body, const ControlLimits& limits) {
  auto message = runahead::net::decode_message<Message>(body, limits);
  if (!message.is_ok()) {
    RUNAHEAD_FUZZ_CHECK(message.error().code == ErrorCode::kProtocol,
                        "a malformed message was refused with a code other than kProtocol");
    return false;
  }
  auto frame = runahead::net::encode_frame(*message, limits);
  if (!frame.is_ok()) {
    // A message of many empty structs is small on the wire and large once re-encoded.
    RUNAHEAD_FUZZ_CHECK(frame.error().code == ErrorCode::kInvalidArgument,
                        "encoding a decoded message failed other than for its size");
    return true;
  }
  const std::span<const uint8_t> encoded(*frame);
  auto encoded_length = runahead::net::decode_frame_header(encoded.first<kFrameHeaderBytes>(),
                                                           limits.max_frame_bytes);
  RUNAHEAD_FUZZ_CHECK(
      encoded_length.is_ok() && *encoded_length + kFrameHeaderBytes == frame->size(),
      "an encoded frame's header disagrees with its body");
  auto again =
      runahead::net::decode_message<Message>(words_of(encoded.subspan(kFrameHeaderBytes)), limits);
  RUNAHEAD_FUZZ_CHECK(again.is_ok(), "an encoded message does not decode");
  auto frame_again = runahead::net::encode_frame(*again, limits);
  RUNAHEAD_FUZZ_CHECK(frame_again.is_ok() && *frame_again == *frame,
                      "a message changed over a decode/encode round trip");
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ControlLimits limits;
  if (size < kFrameHeaderBytes) return 0;
  const std::span<const uint8_t> input(data, size);
  auto length =
      runahead::net::decode_frame_header(input.first<kFrameHeaderBytes>(), limits.max_frame_bytes);
  if (length.is_ok()) {
    RUNAHEAD_FUZZ_CHECK(*length > 0 && *length % 8 == 0 && *length <= limits.max_frame_bytes,
                        "a frame header accepted a length outside the limits");
  }
  // The body is decoded whatever the header said, so that the fuzzer need not match the
  // length to reach the message decoder.
  const std::vector<uint64_t> body = words_of(input.subspan(kFrameHeaderBytes));
  const int directions = check_direction<runahead::net::ToCoordinator>(body, limits) +
                         check_direction<runahead::net::ToWorker>(body, limits) +
                         check_direction<runahead::net::ToClient>(body, limits) +
                         check_direction<runahead::net::HelloAck>(body, limits);
  RUNAHEAD_FUZZ_CHECK(directions <= 1, "a frame decoded as messages of two directions");
  return 0;
}
