#include "tests/fault_drills/coordinator_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/cluster/worker_process.h"

namespace runahead::testing {

CoordinatorProcess::CoordinatorProcess(const std::vector<std::string>& extra,
                                       const std::string& stderr_path) {
  int out[2];
  if (pipe(out) != 0) return;
  std::vector<std::string> args = {runahead_binary(), "coordinator", "--listen",
                                   "127.0.0.1:0",     "--model",     "random:tiny-llama"};
  args.insert(args.end(), extra.begin(), extra.end());
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    const int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (err >= 0) dup2(err, STDERR_FILENO);
    close(out[0]);
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  // "coordinator listening on 127.0.0.1:PORT"
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd descriptor{out[0], POLLIN, 0};
    if (poll(&descriptor, 1, 100) <= 0) continue;
    char chunk[256];
    const ssize_t got = read(out[0], chunk, sizeof(chunk));
    if (got <= 0) break;
    line.append(chunk, static_cast<size_t>(got));
  }
  close(out[0]);
  const std::string prefix = "listening on ";
  const size_t at = line.find(prefix);
  if (at == std::string::npos) return;
  address_ = line.substr(at + prefix.size());
  address_ = address_.substr(0, address_.find('\n'));
  port_ = static_cast<uint16_t>(std::stoi(address_.substr(address_.rfind(':') + 1)));
}

CoordinatorProcess::~CoordinatorProcess() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 100 && running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (running()) kill(pid_, SIGKILL);
  if (pid_ > 0) waitpid(pid_, nullptr, 0);
}

bool CoordinatorProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

uint64_t CoordinatorProcess::status_field(const char* name) const {
  std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  const std::string key = std::string(name) + ":";
  while (std::getline(status, line)) {
    if (line.rfind(key, 0) != 0) continue;
    std::istringstream fields(line.substr(key.size()));
    uint64_t kib = 0;
    fields >> kib;
    return kib * 1024;
  }
  return 0;
}

uint64_t CoordinatorProcess::resident_bytes() const {
  return status_field("VmRSS");
}
uint64_t CoordinatorProcess::peak_resident_bytes() const {
  return status_field("VmHWM");
}

uint64_t file_bytes(const std::string& path) {
  struct stat info {};
  return stat(path.c_str(), &info) == 0 ? static_cast<uint64_t>(info.st_size) : 0;
}

}  // namespace runahead::testing
