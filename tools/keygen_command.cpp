// runahead keygen: writes a fresh key file for the control plane's authentication (the cluster
// key of workers, the client key of clients; docs/security.md).
#include <iostream>

#include "net/control/control_key.h"
#include "tools/commands.h"

namespace runahead::cli {

void add_keygen_command(CLI::App& app) {
  auto paths = std::make_shared<std::vector<std::string>>();
  CLI::App* command = app.add_subcommand(
      "keygen",
      "Write a new random key file (32 bytes as 64 hexadecimal digits, mode 0600) for "
      "--cluster-key-file or --client-key-file; an existing file is never overwritten. Give the "
      "cluster key to the coordinator and every worker, the client key to the coordinator and "
      "its clients.");
  command->add_option("PATH", *paths, "key files to create")->required();
  command->callback([paths] {
    for (const std::string& path : *paths) {
      if (Status written = net::write_key_file(path); !written.is_ok()) {
        std::cerr << "runahead keygen: " << written.message() << "\n";
        std::exit(1);
      }
      std::cout << "wrote a new key to " << path << " (mode 0600)\n";
    }
  });
}

}  // namespace runahead::cli
