// "host:port" addresses as given on command lines and in Hello messages.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace runahead::net {

struct HostPort {
  std::string host;  // a name or an address; IPv6 without brackets
  uint16_t port = 0;

  std::string to_string() const;  // brackets IPv6 hosts
};

// Parses "host:port" or "[v6-address]:port"; kInvalidArgument naming the text when malformed.
Result<HostPort> parse_host_port(std::string_view text);

}  // namespace runahead::net
