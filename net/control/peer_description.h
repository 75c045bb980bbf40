// How logs and errors name a control peer: its role, its name and its address.
#pragma once

#include <string>

#include "net/control/control_messages.h"

namespace runahead::net {

// "worker w1 (127.0.0.1:40123)", "client submit (127.0.0.1:40124)".
std::string describe_peer(const Hello& hello, const std::string& address);

}  // namespace runahead::net
