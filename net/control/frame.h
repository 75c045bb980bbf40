// Framing of control messages on a TCP stream: an 8-byte header (magic, body length, both
// little-endian 32-bit) and a body of that many bytes holding one Cap'n Proto message in its
// standard flat encoding (segment table, then segments), so the length is a multiple of 8.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "core/status.h"

namespace runahead::net {

inline constexpr uint32_t kFrameMagic = 0x48414e52;  // "RNAH" in memory order
inline constexpr size_t kFrameHeaderBytes = 8;

using FrameHeaderBytes = std::array<uint8_t, kFrameHeaderBytes>;

FrameHeaderBytes encode_frame_header(uint32_t body_bytes);

// The body length of a header, validated against `max_body_bytes` before anyone allocates:
// kProtocol for a wrong magic, an empty body, a length that is not a whole number of words,
// or one above the limit.
Result<uint32_t> decode_frame_header(std::span<const uint8_t, kFrameHeaderBytes> header,
                                     uint32_t max_body_bytes);

}  // namespace runahead::net
