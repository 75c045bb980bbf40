// Limits of the control plane, all enforced before memory is allocated for what a peer sent.
// The memory they bound is stated in docs/security.md ("Resource limits of the control plane").
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
  // Largest frame body accepted before the handshake completes: a peer that has not proven
  // anything cannot make the server buffer more than this.
  uint32_t max_handshake_frame_bytes = 64u << 10;
  // Cap'n Proto reader limits: words traversed (0: max_frame_bytes / 8) and pointer depth.
  uint64_t traversal_limit_words = 0;
  int nesting_limit = 16;
  // Longest list of scalars (prompt tokens, logits) and of structs (workers, chain, layers).
  uint32_t max_list_elements = 1u << 22;
  uint32_t max_struct_list_elements = 1u << 16;
  // Largest K of a request's top-K log-probabilities: a Token then carries K (id, value) pairs.
  uint32_t max_top_logprobs = 1024;
  // Messages and bytes waiting to be written on one connection. A send beyond either fails and
  // closes the connection: its peer does not read what it asked for.
  size_t max_outgoing_messages = 1024;
  size_t max_outgoing_bytes = 64u << 20;
  // Bytes held by all connections of one server together (one client connection alone):
  // frames partly received (their buffers grow as bytes arrive, never to the announced size up
  // front) and frames queued to be written. A connection that would pass it is closed.
  size_t max_buffered_bytes = 256u << 20;
  // A frame must be received, and a queued frame written, within this once begun: a peer that
  // announces a frame and trickles it, or stops reading, is closed.
  std::chrono::milliseconds transfer_timeout{60000};
  // Time a new connection has to complete its Hello/HelloAck exchange.
  std::chrono::milliseconds handshake_timeout{5000};
  // After the handshake, a connection on which nothing arrives for this long is closed (with
  // kTimeout, so its owner learns the peer is gone even when TCP does not say so). Peers keep
  // it open with Heartbeat. Zero: no limit.
  std::chrono::milliseconds idle_timeout{0};
  // Connecting ends: a Heartbeat is sent when nothing else was sent for this long, so that the
  // server's idle timeout spares a client that is only waiting for an answer. Zero: never.
  std::chrono::milliseconds keepalive_interval{0};
  // StatusQuery messages a connection may send per second (and at once); more close it. Each
  // costs the coordinator a reply built from every worker's record.
  uint32_t status_queries_per_second = 50;
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
