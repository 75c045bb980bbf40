// The subcommands of the runahead binary; each registers itself on the top-level app.
#pragma once

#include <CLI/CLI.hpp>

namespace runahead::cli {

void add_generate_command(CLI::App& app);

}  // namespace runahead::cli
