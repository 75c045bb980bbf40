// One spdlog logger per component ("model", "worker", "coordinator", ...).
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace runahead {

// Returns the logger of `component`, creating it (stderr, shared level) on first use.
std::shared_ptr<spdlog::logger> logger(const std::string& component);

// Sets the level of every component's logger ("trace", "debug", "info", "warn", "error", "off").
void set_log_level(const std::string& level);

}  // namespace runahead
