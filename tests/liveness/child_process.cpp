#include "tests/liveness/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

namespace runahead::testing {

ChildProcess::ChildProcess(const std::vector<std::string>& args, const std::string& log_path)
    : log_path_(log_path) {
  std::vector<std::string> argv_storage = args;
  pid_ = fork();
  if (pid_ == 0) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
      dup2(log, STDERR_FILENO);
      dup2(log, STDOUT_FILENO);
    }
    std::vector<char*> argv;
    for (std::string& arg : argv_storage) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (running()) {
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
  }
  if (pid_ > 0) waitpid(pid_, nullptr, 0);
}

void ChildProcess::signal(int signal_number) {
  if (pid_ > 0) ::kill(pid_, signal_number);
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

std::string ChildProcess::log() const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int free_loopback_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
  return probe.local_endpoint().port();
}

}  // namespace runahead::testing
