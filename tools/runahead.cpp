// runahead: KV-Runahead prefill across processes, hosts and GPUs.
#include <cstdlib>
#include <iostream>

#include "core/log.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "runahead: faster time-to-first-token by spreading the prefill of a long prompt over many\n"
      "workers with KV-Runahead (each worker computes a slice of the prompt and passes the\n"
      "growing K/V cache on to the next)."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "runahead 0.1.0");
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  app.parse_complete_callback([&] { runahead::set_log_level(log_level); });
  runahead::cli::add_local_command(app);
  runahead::cli::add_bench_command(app);
  runahead::cli::add_generate_command(app);
  runahead::cli::add_coordinator_command(app);
  runahead::cli::add_worker_command(app);
  runahead::cli::add_submit_command(app);
  runahead::cli::add_status_command(app);
  runahead::cli::add_calibrate_command(app);
  runahead::cli::add_keygen_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  } catch (const std::exception& error) {
    std::cerr << "runahead: " << error.what() << "\n";
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
