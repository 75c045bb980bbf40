// Fault drill: a third process that reaches the workers' data-plane endpoints floods them with
// forged K/V blocks (every request id the coordinator hands out, the worker ids of the cluster as
// senders, well-formed for the model, but without the request's capability) while real worker
// processes serve requests over UCX tcp. Every request's tokens equal the single-process run,
// the workers log the refused blocks at a bounded rate, and a client's status names no
// data-plane address.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <spdlog/sinks/ringbuffer_sink.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "net/control/control_client.h"
#include "runahead/coordinator.h"
#include "runtime/actor_system.h"
#include "tests/cluster/test_cluster.h"
#include "tests/cluster/worker_process.h"
#include "tests/support/random_model.h"
#include "tests/support/temp_dir.h"

namespace runahead {
namespace {

using namespace std::chrono_literals;

constexpr int kRequests = 4;
constexpr int kNewTokens = 64;

// The coordinator's own log, where (at debug level, for operators) the workers' data-plane
// addresses are: the attacker is given them, as if it had found the endpoints on the network.
std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> capture_coordinator_log() {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(512);
  sink->set_pattern("%v");
  auto log = logger("coordinator");
  log->sinks().push_back(sink);
  log->set_level(spdlog::level::debug);
  return sink;
}

std::vector<std::string> data_plane_addresses(const std::vector<std::string>& lines) {
  const std::regex address("data-plane address ([0-9a-f]+)");
  std::vector<std::string> found;
  for (const std::string& line : lines) {
    std::smatch match;
    if (std::regex_search(line, match, address)) found.push_back(match[1]);
  }
  return found;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++count;
  return count;
}

// The injector, its stdin and stdout on pipes: aim() names the request id to forge blocks of (0:
// hold fire); finish() ends it and returns what it printed.
class Injector {
 public:
  explicit Injector(const std::vector<std::string>& args) {
    int in[2];
    int out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], STDIN_FILENO);
      ::dup2(out[1], STDOUT_FILENO);
      ::close(in[1]);
      ::close(out[0]);
      std::vector<std::string> copy = args;
      std::vector<char*> argv;
      for (std::string& arg : copy) argv.push_back(arg.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    in_ = in[1];
    out_ = out[0];
  }
  ~Injector() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (in_ >= 0) ::close(in_);
    if (out_ >= 0) ::close(out_);
  }

  void aim(uint64_t request_id) {
    const std::string line = std::to_string(request_id) + "\n";
    EXPECT_EQ(::write(in_, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  }

  std::string finish(int* exit_code) {
    ::close(in_);
    in_ = -1;
    std::string printed;
    char buffer[256];
    for (ssize_t n; (n = ::read(out_, buffer, sizeof buffer)) > 0;) printed.append(buffer, n);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return printed;
  }

 private:
  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
};

TEST(KvInjectionDrill, ForgedBlocksFromAThirdProcessChangeNoTokens) {
  auto coordinator_log = capture_coordinator_log();
  testing::TempDir dir;
  testing::SingleProcess reference("random:tiny-llama");
  const ModelConfig& config = reference.config();

  CoordinatorConfig coordinator_config;
  coordinator_config.model_path = "random:tiny-llama";
  coordinator_config.min_tokens_per_worker = 1;
  auto coordinator = Coordinator::start(coordinator_config);
  ASSERT_TRUE(coordinator) << coordinator.error().to_string();
  std::vector<std::unique_ptr<testing::WorkerProcess>> workers;
  for (int i = 0; i < 2; ++i) {
    workers.push_back(std::make_unique<testing::WorkerProcess>(
        (*coordinator)->address(), "random:tiny-llama", "w" + std::to_string(i),
        std::vector<std::string>{"--transports", "tcp"},
        dir.file("w" + std::to_string(i) + ".log")));
  }
  ASSERT_TRUE((*coordinator)->wait_for_workers(2, 60s).is_ok());
  const std::vector<std::string> addresses =
      data_plane_addresses(coordinator_log->last_formatted());
  ASSERT_EQ(addresses.size(), 2u) << "the coordinator's log names every worker's address";

  // The forged blocks fit the model: any layer, ranges within the prompt, CPU fp32 K and V.
  constexpr int kPromptTokens = 64;
  const uint64_t bytes_per_token = 2 * static_cast<uint64_t>(config.kv_dim()) * sizeof(float);
  std::vector<std::string> args = {RUNAHEAD_KV_INJECTOR,
                                   "tcp",
                                   std::to_string(bytes_per_token),
                                   std::to_string(config.n_layers),
                                   std::to_string(kPromptTokens),
                                   std::to_string(2 * kRequests),
                                   "1,2,3"};  // the workers' ids, and one more
  args.insert(args.end(), addresses.begin(), addresses.end());
  Injector injector(args);
  // Around the requests: guessed request ids. Then, with a pause after each phase so that the
  // workers' rate-limited logs show the next one, aimed at each request while it runs.
  const auto pause = [&] {
    injector.aim(0);
    std::this_thread::sleep_for(1100ms);
  };
  std::this_thread::sleep_for(500ms);
  pause();
  for (int r = 0; r < kRequests; ++r) {
    const auto id = static_cast<uint64_t>(r + 1);  // the coordinator's ids are sequential
    SCOPED_TRACE("request " + std::to_string(id));
    injector.aim(id);
    const std::vector<int32_t> prompt =
        testing::random_tokens(kPromptTokens, config.vocab_size, static_cast<uint64_t>(100 + r));
    RequestOptions options;
    options.prompt_tokens = prompt;
    options.max_new_tokens = kNewTokens;
    auto handle = (*coordinator)->submit(options);
    ASSERT_TRUE(handle) << handle.error().to_string();
    auto result = handle->result_within(60000);
    ASSERT_TRUE(result) << result.error().to_string();
    EXPECT_EQ(result->tokens, reference.tokens(prompt, kNewTokens).tokens);
    pause();
  }

  int exit_code = -1;
  const std::string report = injector.finish(&exit_code);
  EXPECT_EQ(exit_code, 0) << report;
  unsigned long long posted = 0;
  unsigned long long done = 0;
  unsigned long long failed = 0;
  ASSERT_EQ(
      std::sscanf(report.c_str(), "posted %llu done %llu failed %llu", &posted, &done, &failed), 3)
      << report;
  EXPECT_GT(posted, 100u) << "the injector hardly sent anything";
  std::cout << "injected " << posted << " blocks (" << failed << " refused in rendezvous)\n";

  (*coordinator)->shutdown();
  for (auto& worker : workers) worker.reset();  // flushes their logs
  std::string logs;
  for (int i = 0; i < 2; ++i) logs += read_file(dir.file("w" + std::to_string(i) + ".log"));
  // Refused where it arrived, for the reason that matters: the request's capability.
  EXPECT_GT(count_of(logs, "refused a K/V block"), 0u);
  EXPECT_GT(count_of(logs, "capability does not match"), 0u) << logs.substr(0, 4000);
  // At a bounded rate: 10 lines a second per endpoint, whatever the flood.
  EXPECT_LT(count_of(logs, "refused a K/V block"), 2u * 10u * 120u);
}

// A status as a client sees it names no data-plane address (it did: anyone who could ask the
// coordinator learned where to inject K/V).
TEST(KvInjectionDrill, StatusForClientsNamesNoDataPlaneAddress) {
  CoordinatorConfig config;
  config.adopt_first_model = true;
  auto coordinator = Coordinator::start(config);
  ASSERT_TRUE(coordinator) << coordinator.error().to_string();
  testing::WorkerProcess worker((*coordinator)->address(), "random:tiny-llama", "w0",
                                {"--transports", "tcp"});
  ASSERT_TRUE((*coordinator)->wait_for_workers(1, 60s).is_ok());

  runtime::ActorSystem system(runtime::ActorSystemOptions{.threads = 1});
  system.start();
  std::mutex mutex;
  std::condition_variable changed;
  std::optional<net::StatusReply> reply;
  net::Hello hello;
  hello.role = net::PeerRole::kClient;
  hello.name = "status client";
  auto client = net::ClientControlClient::connect(
      system.io(), (*coordinator)->address(), hello,
      [&](net::ControlEvent<net::ToClient> event) {
        if (auto* received = std::get_if<net::ControlReceived<net::ToClient>>(&event)) {
          if (auto* status = std::get_if<net::StatusReply>(&received->message)) {
            std::lock_guard lock(mutex);
            reply = *status;
            changed.notify_all();
          }
        }
        return Status::ok();
      },
      5000ms);
  ASSERT_TRUE(client) << client.error().to_string();
  ASSERT_TRUE((*client)->send(net::StatusQuery{}).is_ok());
  std::unique_lock lock(mutex);
  ASSERT_TRUE(changed.wait_for(lock, 10s, [&] { return reply.has_value(); }));
  ASSERT_EQ(reply->workers.size(), 1u);
  EXPECT_EQ(reply->workers[0].name, "w0");
  EXPECT_FALSE(reply->workers[0].info.backend.empty());  // the rest is still there
  EXPECT_TRUE(reply->workers[0].info.data_plane_address.empty());
}

}  // namespace
}  // namespace runahead
