#include "tools/local_cluster.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

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
