// Limits of the control plane, all enforced before memory is allocated for what a peer sent.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "core/status.h"
#include "net/control/tcp_keepalive.h"

namespace runahead::net {

struct ControlLimits {
  // Largest frame body accepted or sent. Bulk tensors never travel on the control plane.
  uint32_t max_frame_bytes = 16u << 20;
  // Cap'n Proto reader limits: words traversed (0: max_frame_bytes / 8) and pointer depth.
  uint64_t traversal_limit_words = 0;
  int nesting_limit = 16;
  // Longest list of scalars (prompt tokens, logits) and of structs (workers, chain, layers).
  uint32_t max_list_elements = 1u << 22;
  uint32_t max_struct_list_elements = 1u << 16;
  // Largest K of a request's top-K log-probabilities: a Token then carries K (id, value) pairs.
  uint32_t max_top_logprobs = 1024;
  // Messages waiting to be written on one connection; send() beyond it fails.
  size_t max_outgoing_messages = 1024;
  // Time a new connection has to complete its Hello/HelloAck exchange.
  std::chrono::milliseconds handshake_timeout{5000};
  // After the handshake, a connection on which nothing arrives for this long is closed (with
  // kTimeout, so its owner learns the peer is gone even when TCP does not say so). Peers keep
  // it open with Heartbeat. Zero: no limit.
  std::chrono::milliseconds idle_timeout{0};
  // Connections a server holds at once; more are closed on accept.
  size_t max_connections = 1024;
  // TCP keepalive on every control connection, both ends (net/control/tcp_keepalive.h).
  TcpKeepalive keepalive;

  uint64_t effective_traversal_limit_words() const {
    return traversal_limit_words != 0 ? traversal_limit_words : max_frame_bytes / 8;
  }
  // kInvalidArgument naming the first limit that makes no sense.
  Status validate() const;
};

}  // namespace runahead::net
