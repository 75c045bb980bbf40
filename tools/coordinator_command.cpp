// runahead coordinator: the coordinator as a process; workers and clients connect to it.
#include <iostream>

#include "runahead/coordinator.h"
#include "runahead/http_server.h"
#include "tools/cli_support.h"
#include "tools/commands.h"
#include "tools/coordinator_flags.h"
#include "tools/http_flags.h"

namespace runahead::cli {

void add_coordinator_command(CLI::App& app) {
  auto config = std::make_shared<CoordinatorConfig>();
  config->listen = "127.0.0.1:7070";
  CLI::App* command = app.add_subcommand(
      "coordinator",
      "Run a coordinator: workers join it, clients submit prompts to it; each "
      "request is planned over the healthy workers and its tokens streamed back.");
  add_coordinator_flags(command, *config, CoordinatorFlagScope::kAll);
  auto http = std::make_shared<HttpFlags>();
  add_http_flags(command, *http);
  command->callback([config, http] {
    block_termination_signals();
    auto coordinator = Coordinator::start(*config);
    if (!coordinator) {
      std::cerr << "runahead coordinator: " << coordinator.error().message << "\n";
      std::exit(1);
    }
    std::cout << "coordinator listening on " << (*coordinator)->address() << std::endl;
    std::unique_ptr<HttpServer> http_server;
    if (!http->listen.empty()) {
      http->config.listen = http->listen;
      // The coordinator's --model: the weights workers must run, and the HTTP API's tokenizer
      // and chat template.
      http->config.model_path = config->model_path;
      auto started = HttpServer::start(**coordinator, http->config);
      if (!started) {
        std::cerr << "runahead coordinator: " << started.error().message << "\n";
        std::exit(1);
      }
      http_server = std::move(started).value();
      std::cout << "HTTP API on http://" << http_server->address() << std::endl;
    }
    wait_for_termination();
    if (http_server) http_server->shutdown();
    (*coordinator)->shutdown();
  });
}

}  // namespace runahead::cli
