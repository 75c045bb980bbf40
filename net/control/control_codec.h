// Control messages to and from frames (net/control/frame.h). Decoding treats its input as hostile:
// Cap'n Proto's traversal and nesting limits, list-length limits and enum checks apply, and any
// malformed input comes back as a kProtocol error, never an exception or a crash.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "net/control/control_limits.h"
#include "net/control/control_messages.h"

namespace runahead::net {

// The whole frame: header and body. kInvalidArgument if the body would exceed the limit.
Result<std::vector<uint8_t>> encode_frame(const ControlMessage& message,
                                          const ControlLimits& limits);

// Decodes a frame body (whole 64-bit words, as the header announced).
Result<ControlMessage> decode_message(std::span<const uint64_t> body, const ControlLimits& limits);

}  // namespace runahead::net
