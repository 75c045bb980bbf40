#include "net/control/tcp_keepalive.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"

namespace runahead::net {
namespace {

void set_int_option(int fd, int level, int name, int value, const char* what) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) {
    logger("control")->debug("control: cannot set {} to {} on socket {}: {}", what, value, fd,
                             std::strerror(errno));
  }
}

}  // namespace

void apply_tcp_keepalive(asio::ip::tcp::socket& socket, const TcpKeepalive& keepalive) {
  if (!keepalive.enabled || !socket.is_open()) return;
  const int fd = socket.native_handle();
  set_int_option(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
  set_int_option(fd, IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(keepalive.idle.count()),
                 "TCP_KEEPIDLE");
  set_int_option(fd, IPPROTO_TCP, TCP_KEEPINTVL, static_cast<int>(keepalive.interval.count()),
                 "TCP_KEEPINTVL");
  set_int_option(fd, IPPROTO_TCP, TCP_KEEPCNT, keepalive.probes, "TCP_KEEPCNT");
  const auto user_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(keepalive.dead_after());
  set_int_option(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, static_cast<int>(user_timeout.count()),
                 "TCP_USER_TIMEOUT");
}

}  // namespace runahead::net
