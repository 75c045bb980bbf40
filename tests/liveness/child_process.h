// A child process for fault drills: started from argv with its stderr in a file, signalled
// (SIGSTOP, SIGCONT, SIGKILL, ...), watched for its exit, killed when it goes out of scope.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace runahead::testing {

class ChildProcess {
 public:
  // Starts `args` (args[0] is the executable) with stderr appended to `log_path`.
  ChildProcess(const std::vector<std::string>& args, const std::string& log_path);
  ~ChildProcess();  // SIGKILL if still running (and SIGCONT first, should it be stopped)
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  void signal(int signal_number);
  // False once it exited (reaped here).
  bool running();
  pid_t pid() const { return pid_; }
  // The log so far.
  std::string log() const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
};

// A TCP port on 127.0.0.1 that nothing listens on now (bound and released).
int free_loopback_port();

}  // namespace runahead::testing
