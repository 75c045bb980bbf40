// A real `runahead coordinator` process for fault drills: started from the built binary on a
// free port, its stderr kept in a file, its memory read from /proc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace runahead::testing {

class CoordinatorProcess {
 public:
  // Starts `runahead coordinator --listen 127.0.0.1:0` plus `extra`, its stderr appended to
  // `stderr_path`, and waits for the address it prints (empty address() if it never does).
  CoordinatorProcess(const std::vector<std::string>& extra, const std::string& stderr_path);
  ~CoordinatorProcess();  // SIGTERM, then SIGKILL
  CoordinatorProcess(const CoordinatorProcess&) = delete;
  CoordinatorProcess& operator=(const CoordinatorProcess&) = delete;

  const std::string& address() const { return address_; }
  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool running();

  // VmRSS and VmHWM of /proc/PID/status, in bytes (0 if unreadable).
  uint64_t resident_bytes() const;
  uint64_t peak_resident_bytes() const;

 private:
  uint64_t status_field(const char* name) const;

  pid_t pid_ = -1;
  std::string address_;
  uint16_t port_ = 0;
};

// Bytes in the file at `path` (0 if missing).
uint64_t file_bytes(const std::string& path);

}  // namespace runahead::testing
