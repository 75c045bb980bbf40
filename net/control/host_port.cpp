#include "net/control/host_port.h"

#include <charconv>

#include <fmt/format.h>

namespace runahead::net {

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

Result<HostPort> parse_host_port(std::string_view text) {
  auto invalid = [&](const char* why) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("address '{}' is not host:port: {}", text, why));
  };
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return invalid("unclosed '['");
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') return invalid("no port after ']'");
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return invalid("no ':'");
    host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) return invalid("IPv6 hosts need [brackets]");
    port_text = text.substr(colon + 1);
  }
  if (host.empty()) return invalid("empty host");
  unsigned port = 0;
  auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc() || end != port_text.data() + port_text.size() || port > 65535 ||
      port_text.empty()) {
    return invalid("port must be a number in [0, 65535]");
  }
  return HostPort{std::string(host), static_cast<uint16_t>(port)};
}

}  // namespace runahead::net
