// Control messages to and from frames (net/control/frame.h). Decoding treats its input as hostile:
// Cap'n Proto's traversal and nesting limits, list-length limits and enum checks apply, and any
// malformed input comes back as a kProtocol error, never an exception or a crash. Each end
// decodes only the direction it receives; a message of another direction is refused, naming it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "net/control/control_limits.h"
#include "net/control/control_messages.h"

namespace runahead::net {

// The whole frame: header and body. kInvalidArgument if the body would exceed the limit.
Result<std::vector<uint8_t>> encode_frame(const ToCoordinator& message,
                                          const ControlLimits& limits);
Result<std::vector<uint8_t>> encode_frame(const ToWorker& message, const ControlLimits& limits);
Result<std::vector<uint8_t>> encode_frame(const ToClient& message, const ControlLimits& limits);
Result<std::vector<uint8_t>> encode_frame(const HelloAck& message, const ControlLimits& limits);
Result<std::vector<uint8_t>> encode_frame(const HelloChallenge& message,
                                          const ControlLimits& limits);
Result<std::vector<uint8_t>> encode_frame(const HelloProof& message, const ControlLimits& limits);

// Decodes a frame body (whole 64-bit words, as the header announced) as a message of one
// direction: Message is ToCoordinator, ToWorker, ToClient, HelloAck, HandshakeAnswer (HelloAck or
// HelloChallenge) or HelloProof.
template <typename Message>
Result<Message> decode_message(std::span<const uint64_t> body, const ControlLimits& limits);

template <>
Result<ToCoordinator> decode_message<ToCoordinator>(std::span<const uint64_t> body,
                                                    const ControlLimits& limits);
template <>
Result<ToWorker> decode_message<ToWorker>(std::span<const uint64_t> body,
                                          const ControlLimits& limits);
template <>
Result<ToClient> decode_message<ToClient>(std::span<const uint64_t> body,
                                          const ControlLimits& limits);
template <>
Result<HelloAck> decode_message<HelloAck>(std::span<const uint64_t> body,
                                          const ControlLimits& limits);
template <>
Result<HandshakeAnswer> decode_message<HandshakeAnswer>(std::span<const uint64_t> body,
                                                        const ControlLimits& limits);
template <>
Result<HelloProof> decode_message<HelloProof>(std::span<const uint64_t> body,
                                              const ControlLimits& limits);

}  // namespace runahead::net
