// runahead status: the workers a coordinator knows, their health, and its queue.
#include <iostream>

#include <nlohmann/json.hpp>

#include "runahead/client.h"
#include "tools/cli_support.h"
#include "tools/commands.h"

namespace runahead::cli {

void add_status_command(CLI::App& app) {
  auto coordinator = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto client_key_file = std::make_shared<std::string>();
  CLI::App* command =
      app.add_subcommand("status", "Show a coordinator's workers, their health, and its queue.");
  command->add_option("--coordinator", *coordinator, "HOST:PORT of the coordinator")->required();
  add_client_key_option(command, *client_key_file);
  command->add_flag("--json", *json, "print one JSON object instead of text");
  command->callback([coordinator, json, client_key_file] {
    ClientConfig connection;
    connection.coordinator_address = *coordinator;
    connection.client_key_file = *client_key_file;
    auto client = Client::connect(connection);
    if (!client) {
      std::cerr << "runahead status: " << client.error().message << "\n";
      std::exit(1);
    }
    auto status = (*client)->status();
    if (!status) {
      std::cerr << "runahead status: " << status.error().message << "\n";
      std::exit(1);
    }
    if (*json) {
      nlohmann::json workers = nlohmann::json::array();
      for (const WorkerState& w : status->workers) {
        workers.push_back({{"id", w.id},
                           {"name", w.name},
                           {"backend", w.backend},
                           {"model_hash", w.model_hash},
                           {"healthy", w.healthy},
                           {"last_heartbeat_age_ms", w.last_heartbeat_age_ms},
                           {"active_requests", w.active_requests},
                           {"free_memory_bytes", w.free_memory_bytes}});
      }
      std::cout << nlohmann::json{{"workers", workers},
                                  {"queued_requests", status->queued_requests},
                                  {"active_requests", status->active_requests},
                                  {"queue_capacity", status->queue_capacity}}
                       .dump()
                << "\n";
      return;
    }
    std::cout << status->workers.size() << " worker(s); " << status->active_requests
              << " request(s) running, " << status->queued_requests << " queued (capacity "
              << status->queue_capacity << ")\n";
    for (const WorkerState& w : status->workers) {
      std::cout << "  " << w.id << " " << w.name << " " << w.backend << " "
                << (w.healthy ? "healthy" : "silent") << ", last heartbeat "
                << w.last_heartbeat_age_ms << " ms ago, " << w.active_requests << " active, "
                << (w.free_memory_bytes >> 20) << " MiB free, model " << w.model_hash << "\n";
    }
  });
}

}  // namespace runahead::cli
