// A real `runahead worker` process for cluster tests: started from the built binary, killed
// with any signal, waited for.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace runahead::testing {

class WorkerProcess {
 public:
  // Starts `runahead worker --coordinator ADDRESS --model MODEL --name NAME` plus `extra`; its
  // stderr (the log) goes to `log_path` where one is given.
  WorkerProcess(const std::string& coordinator, const std::string& model, const std::string& name,
                const std::vector<std::string>& extra = {}, const std::string& log_path = "");
  ~WorkerProcess();  // SIGKILL if still running
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  void kill(int signal_number);
  bool running();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// The runahead binary of this build (or $RUNAHEAD_BINARY).
std::string runahead_binary();

}  // namespace runahead::testing
