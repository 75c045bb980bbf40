// The flags of the coordinator's HTTP API (`runahead coordinator --http HOST:PORT`).
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "runahead/http_server.h"

namespace runahead::cli {

struct HttpFlags {
  std::string listen;  // empty: no HTTP API
  HttpServerConfig config;
};

// Registers --http, --served-model-name and the --http-* limits on `command`, bound to
// `flags` (which must outlive parsing).
void add_http_flags(CLI::App* command, HttpFlags& flags);

}  // namespace runahead::cli
