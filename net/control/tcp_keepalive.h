// TCP keepalive on a control connection: a peer whose host vanished (power loss, a cut link,
// no FIN or RST ever sent) is noticed by the kernel even on a connection with nothing to send,
// and a write that is never acknowledged fails in bounded time (TCP_USER_TIMEOUT). Heartbeats
// notice the same sooner; keepalive also covers connections that carry none.
#pragma once

#include <chrono>

#include <asio/ip/tcp.hpp>

namespace runahead::net {

struct TcpKeepalive {
  bool enabled = true;
  std::chrono::seconds idle{10};     // quiet time before the first probe
  std::chrono::seconds interval{5};  // between probes
  int probes = 3;                    // unanswered probes before the connection is dropped

  // The longest a dead peer goes unnoticed: idle + interval * probes (25 s by default).
  std::chrono::seconds dead_after() const { return idle + interval * probes; }
};

// Sets SO_KEEPALIVE, TCP_KEEPIDLE/KEEPINTVL/KEEPCNT and TCP_USER_TIMEOUT (dead_after) on an
// open socket. Best effort: an option the system refuses is logged and skipped.
void apply_tcp_keepalive(asio::ip::tcp::socket& socket, const TcpKeepalive& keepalive);

}  // namespace runahead::net
