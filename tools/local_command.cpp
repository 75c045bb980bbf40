// runahead local: a whole cluster on this machine. It starts a coordinator in this process and
// N worker processes (worker i on GPU i with --device cuda), submits the prompt, prints the
// answer as it streams, and stops the workers.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "runahead/coordinator.h"
#include "tools/cli_support.h"
#include "tools/commands.h"

namespace runahead::cli {
namespace {

struct LocalOptions {
  int workers = 2;
  std::string model;
  std::string device = "cpu";
  std::string transports;
  PromptInput input;
  RequestOptions request;
  std::string partition = "balanced";
  int64_t min_tokens_per_worker = 1;
  int64_t startup_timeout_s = 300;
  bool json = false;
};

std::string self_executable() {
  char path[4096];
  const ssize_t length = readlink("/proc/self/exe", path, sizeof path - 1);
  if (length <= 0) return "runahead";
  path[length] = '\0';
  return path;
}

// The worker processes; stopped (SIGTERM, then SIGKILL) when this goes out of scope.
class WorkerProcesses {
 public:
  ~WorkerProcesses() { stop(); }

  Status spawn(const LocalOptions& options, const std::string& coordinator) {
    const std::string executable = self_executable();
    for (int i = 0; i < options.workers; ++i) {
      std::string device = options.device;
      if (device == "cuda") device = "cuda:" + std::to_string(i);
      std::vector<std::string> args = {
          executable,    "worker",   "--coordinator", coordinator, "--model",
          options.model, "--device", device,          "--name",    "w" + std::to_string(i)};
      if (options.device == "cpu") {
        // The workers share this machine's cores.
        const long cores = sysconf(_SC_NPROCESSORS_ONLN);
        args.push_back("--threads");
        args.push_back(std::to_string(std::max<long>(1, cores / options.workers)));
      }
      if (!options.transports.empty()) {
        args.push_back("--transports");
        args.push_back(options.transports);
      }
      const pid_t pid = fork();
      if (pid < 0)
        return make_error(ErrorCode::kUnavailable, "cannot start worker w" + std::to_string(i));
      if (pid == 0) {
        // The child must not inherit the blocked termination signals.
        sigset_t set;
        sigemptyset(&set);
        pthread_sigmask(SIG_SETMASK, &set, nullptr);
        // CPU workers share the cores: idle OpenMP threads must sleep, not spin.
        if (options.device == "cpu") setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
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

  // A worker process that already exited, with its status, or ok.
  Status check_alive() {
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

  void stop() {
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

 private:
  std::vector<pid_t> pids_;
};

int run_local(const LocalOptions& options) {
  auto fail = [](const std::string& message) {
    std::cerr << "runahead local: " << message << "\n";
    return 1;
  };
  if (options.workers < 1) return fail("--workers must be at least 1");
  auto prompt = prepare_prompt(options.input, options.model);
  if (!prompt) return fail(prompt.error().message);

  CoordinatorConfig config;
  config.balanced_partition = options.partition == "balanced";
  config.min_tokens_per_worker = options.min_tokens_per_worker;
  auto coordinator = Coordinator::start(config);
  if (!coordinator) return fail(coordinator.error().message);
  WorkerProcesses workers;
  if (Status spawned = workers.spawn(options, (*coordinator)->address()); !spawned.is_ok()) {
    return fail(spawned.message());
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(options.startup_timeout_s);
  for (;;) {
    if (Status alive = workers.check_alive(); !alive.is_ok()) return fail(alive.message());
    auto status = (*coordinator)->status();
    if (!status) return fail(status.error().message);
    if (static_cast<int>(status->workers.size()) >= options.workers) break;
    if (std::chrono::steady_clock::now() > deadline) {
      return fail("only " + std::to_string(status->workers.size()) + " of " +
                  std::to_string(options.workers) + " workers joined within " +
                  std::to_string(options.startup_timeout_s) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  RequestOptions request = options.request;
  request.prompt_tokens = prompt->tokens;
  OutcomePrinter printer(prompt->tokenizer.get(), options.json, !options.input.chat,
                         options.input.prompt);
  auto handle = (*coordinator)->submit(request, printer.callback());
  const int code = printer.finish(handle ? handle->result() : Result<RequestResult>(handle.error()),
                                  prompt->tokens);
  (*coordinator)->shutdown();
  workers.stop();
  return code;
}

}  // namespace

void add_local_command(CLI::App& app) {
  auto options = std::make_shared<LocalOptions>();
  CLI::App* command = app.add_subcommand(
      "local",
      "Run a cluster on this machine: a coordinator here and --workers worker "
      "processes (worker i on GPU i with --device cuda), answer one prompt, stop.");
  command->add_option("--workers", options->workers, "worker processes")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  command
      ->add_option("--model", options->model, "checkpoint directory, .gguf file or random:PRESET")
      ->required();
  command->add_option("--device", options->device, "cpu or cuda (worker i on GPU i)")
      ->capture_default_str();
  command->add_option("--transports", options->transports,
                      "UCX transports for K/V (e.g. tcp, or shm,self); empty lets UCX choose");
  add_prompt_options(command, options->input, /*with_tokenizer_option=*/true);
  command
      ->add_option("--max-new-tokens", options->request.max_new_tokens,
                   "tokens to generate, the first included")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  add_sampling_options(command, options->request.sampling);
  command->add_option("--partition", options->partition, "balanced or even")
      ->check(CLI::IsMember({"balanced", "even"}))
      ->capture_default_str();
  command
      ->add_option("--min-tokens-per-worker", options->min_tokens_per_worker,
                   "shorter prompts use fewer workers")
      ->capture_default_str();
  command
      ->add_option("--startup-timeout", options->startup_timeout_s,
                   "seconds the workers have to load the model and join")
      ->capture_default_str();
  command->add_flag("--json", options->json, "print one JSON object instead of text");
  command->callback([options] {
    block_termination_signals();
    const int code = run_local(*options);
    if (code != 0) std::exit(code);
  });
}

}  // namespace runahead::cli
