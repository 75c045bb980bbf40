#include "tests/cluster/worker_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

namespace runahead::testing {

std::string runahead_binary() {
  // RUNAHEAD_BINARY (the environment) overrides the binary of this build.
  const char* binary = std::getenv("RUNAHEAD_BINARY");
  return binary != nullptr ? binary : RUNAHEAD_BINARY;
}

WorkerProcess::WorkerProcess(const std::string& coordinator, const std::string& model,
                             const std::string& name, const std::vector<std::string>& extra,
                             const std::string& log_path) {
  std::vector<std::string> args = {runahead_binary(), "worker", "--coordinator",  coordinator,
                                   "--model",         model,    "--name",         name,
                                   "--threads",       "1",      "--probe-tokens", "8"};
  args.insert(args.end(), extra.begin(), extra.end());
  pid_ = fork();
  if (pid_ == 0) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    if (!log_path.empty()) {
      const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (log >= 0) ::dup2(log, STDERR_FILENO);
    }
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
}

WorkerProcess::~WorkerProcess() {
  if (running()) kill(SIGKILL);
  if (pid_ > 0) waitpid(pid_, nullptr, 0);
}

void WorkerProcess::kill(int signal_number) {
  if (pid_ > 0) ::kill(pid_, signal_number);
}

bool WorkerProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

}  // namespace runahead::testing
