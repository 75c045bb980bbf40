// The subcommands of the runahead binary; each registers itself on the top-level app.
#pragma once

#include <CLI/CLI.hpp>

namespace runahead::cli {

void add_generate_command(CLI::App& app);
void add_coordinator_command(CLI::App& app);
void add_worker_command(CLI::App& app);
void add_submit_command(CLI::App& app);
void add_status_command(CLI::App& app);
void add_local_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_calibrate_command(CLI::App& app);
void add_keygen_command(CLI::App& app);

}  // namespace runahead::cli
