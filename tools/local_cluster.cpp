#include "tools/local_cluster.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "net/control/control_key.h"
#include "tools/worker_flags.h"

namespace runahead::cli {
namespace {

std::string self_executable() {
  char path[4096];
  const ssize_t length = readlink("/proc/self/exe", path, sizeof path - 1);
  if (length <= 0) return "runahead";
  path[length] = '\0';
  return path;
}

// A private directory (mode 0700, as mkdtemp makes it) holding the cluster's own keys while its
// processes read them; removed with its keys when the cluster has started (or failed to).
class PrivateKeyDir {
 public:
  ~PrivateKeyDir() {
    if (path_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  // Creates the directory and a fresh cluster key and client key in it.
  Status create() {
    std::error_code error;
    std::string pattern =
        (std::filesystem::temp_directory_path(error) / "runahead-keys-XXXXXX").string();
    if (error) pattern = "/tmp/runahead-keys-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      return make_error(ErrorCode::kUnavailable,
                        "cannot create a private directory " + pattern +
                            " for the cluster's keys: " + std::strerror(errno));
    }
    path_ = pattern;
    RUNAHEAD_RETURN_IF_ERROR(net::write_key_file(cluster_key_file()));
    return net::write_key_file(client_key_file());
  }

  std::string cluster_key_file() const { return path_ + "/cluster.key"; }
  std::string client_key_file() const { return path_ + "/client.key"; }

 private:
  std::string path_;
};

}  // namespace

void add_local_cluster_flags(CLI::App* command, LocalClusterOptions& options) {
  command->add_option("--workers", options.workers, "worker processes")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  add_worker_flags(command, options.worker, WorkerFlagScope::kLocalCluster);
  command
      ->add_option("--startup-timeout", options.startup_timeout_s,
                   "seconds the workers have to load the model and join")
      ->capture_default_str();
}

Result<std::unique_ptr<LocalCluster>> LocalCluster::start(LocalClusterOptions options) {
  if (options.workers < 1) {
    return make_error(ErrorCode::kInvalidArgument, "a local cluster needs at least one worker");
  }
  // The cluster authenticates its own processes with keys made for it, unless given some.
  PrivateKeyDir keys;
  if (options.coordinator.cluster_key_file.empty() && options.worker.cluster_key_file.empty()) {
    RUNAHEAD_RETURN_IF_ERROR(keys.create());
    options.coordinator.cluster_key_file = keys.cluster_key_file();
    options.worker.cluster_key_file = keys.cluster_key_file();
    if (options.coordinator.client_key_file.empty()) {
      options.coordinator.client_key_file = keys.client_key_file();
    }
  }
  std::unique_ptr<LocalCluster> cluster(new LocalCluster());
  // The coordinator expects the model its own workers load, hashed here as they hash it.
  CoordinatorConfig& coordinator = options.coordinator;
  if (coordinator.expected_model_hash.empty() && coordinator.model_path.empty() &&
      !coordinator.adopt_first_model) {
    coordinator.model_path = options.worker.model;
  }
  RUNAHEAD_ASSIGN_OR_RETURN(cluster->coordinator_, Coordinator::start(options.coordinator));
  RUNAHEAD_RETURN_IF_ERROR(cluster->spawn(options));
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(options.startup_timeout_s);
  for (;;) {
    RUNAHEAD_RETURN_IF_ERROR(cluster->check_workers());
    RUNAHEAD_ASSIGN_OR_RETURN(ClusterStatus status, cluster->coordinator_->status());
    if (static_cast<int>(status.workers.size()) >= options.workers) break;
    if (std::chrono::steady_clock::now() > deadline) {
      return make_error(ErrorCode::kTimeout, "only " + std::to_string(status.workers.size()) +
                                                 " of " + std::to_string(options.workers) +
                                                 " workers joined within " +
                                                 std::to_string(options.startup_timeout_s) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cluster;
}

LocalCluster::~LocalCluster() {
  stop();
}

Status LocalCluster::spawn(const LocalClusterOptions& options) {
  const std::string executable = self_executable();
  const bool on_cpu = options.worker.device == "cpu";
  for (int i = 0; i < options.workers; ++i) {
    WorkerOptions worker = options.worker;
    worker.coordinator = coordinator_->address();
    worker.name = "w" + std::to_string(i);
    if (worker.device == "cuda") worker.device = "cuda:" + std::to_string(i);
    if (on_cpu && worker.cpu_threads == 0) {
      // The workers share this machine's cores.
      const long cores = sysconf(_SC_NPROCESSORS_ONLN);
      worker.cpu_threads = static_cast<int>(std::max<long>(1, cores / options.workers));
    }
    std::vector<std::string> args = {executable, "worker"};
    for (std::string& arg : worker_arguments(worker)) args.push_back(std::move(arg));
    const pid_t pid = fork();
    if (pid < 0)
      return make_error(ErrorCode::kUnavailable, "cannot start worker w" + std::to_string(i));
    if (pid == 0) {
      // The child must not inherit the blocked termination signals.
      sigset_t set;
      sigemptyset(&set);
      pthread_sigmask(SIG_SETMASK, &set, nullptr);
      // CPU workers share the cores: idle OpenMP threads must sleep, not spin.
      if (on_cpu) setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
      std::vector<char*> argv;
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execv(executable.c_str(), argv.data());
      _exit(127);
    }
    pids_.push_back(pid);
  }
  return Status::ok();
}

Status LocalCluster::check_workers() {
  for (size_t i = 0; i < pids_.size(); ++i) {
    if (pids_[i] <= 0) continue;
    int status = 0;
    if (waitpid(pids_[i], &status, WNOHANG) == pids_[i]) {
      pids_[i] = -1;
      return make_error(ErrorCode::kUnavailable,
                        "worker w" + std::to_string(i) + " exited (" +
                            (WIFEXITED(status) ? "code " + std::to_string(WEXITSTATUS(status))
                                               : "signal " + std::to_string(WTERMSIG(status))) +
                            ")");
    }
  }
  return Status::ok();
}

void LocalCluster::stop() {
  if (coordinator_) coordinator_->shutdown();
  for (pid_t pid : pids_) {
    if (pid > 0) kill(pid, SIGTERM);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (pid_t& pid : pids_) {
    if (pid <= 0) continue;
    while (waitpid(pid, nullptr, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid = -1;
  }
}

}  // namespace runahead::cli
