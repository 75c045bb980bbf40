// A real coordinator (this process, through the embeddable API) and real worker processes
// exchanging K/V over UCX on loopback: results equal the single-process run, many concurrent
// clients lose nothing, a killed worker fails only its requests and a restarted one rejoins.
#include <signal.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "kernels/backend.h"
#include "model/local_generation.h"
#include "model/random_model.h"
#include "runahead/client.h"
#include "runahead/coordinator.h"
#include "tests/cluster/test_cluster.h"
#include "tests/cluster/worker_process.h"
#include "tests/support/numeric.h"
#include "tests/support/random_model.h"

namespace runahead {
namespace {

using namespace std::chrono_literals;
using testing::relative_error;
using Cluster = testing::TestCluster;
using Reference = testing::SingleProcess;
using testing::WorkerProcess;

std::vector<int32_t> prompt_of(int length, int vocab, uint64_t seed) {
  return testing::random_tokens(length, vocab, seed);
}

struct TransportCase {
  const char* name;
  const char* transports;
};

class ClusterEqualsOneProcess : public ::testing::TestWithParam<std::tuple<int, TransportCase>> {};

TEST_P(ClusterEqualsOneProcess, FirstTokenContinuationAndLogits) {
  const auto [workers, transport] = GetParam();
  Reference reference("random:tiny-llama");
  Cluster cluster(workers, "random:tiny-llama", {"--transports", transport.transports});
  ASSERT_NE(cluster.coordinator, nullptr);
  for (int length : {9, 40, 101}) {
    SCOPED_TRACE("prompt of " + std::to_string(length) + " tokens");
    const std::vector<int32_t> prompt = prompt_of(length, 97, static_cast<uint64_t>(length));
    const LocalGenerationResult want = reference.tokens(prompt, 12);
    RequestOptions options;
    options.prompt_tokens = prompt;
    options.max_new_tokens = 12;
    options.return_logits = true;
    auto handle = cluster.coordinator->submit(options);
    ASSERT_TRUE(handle) << handle.error().to_string();
    auto result = handle->result_within(60000);
    ASSERT_TRUE(result) << result.error().to_string();
    EXPECT_EQ(result->tokens, want.tokens);
    ASSERT_FALSE(result->logits.empty());
    // The CPU backend is deterministic; slices change only the order of some sums.
    EXPECT_LT(relative_error(result->logits.front(), want.first_logits), 1e-5);
    // The timeline covers every layer of every worker that took part.
    std::map<uint64_t, int> layers_per_worker;
    for (const LayerTimeline& layer : result->timeline) ++layers_per_worker[layer.worker_id];
    EXPECT_EQ(layers_per_worker.size(), static_cast<size_t>(std::min(workers, length)));
    for (const auto& [worker, layers] : layers_per_worker) EXPECT_EQ(layers, 3);
    EXPECT_GT(result->ttft_ms, 0.0);
  }
}

INSTANTIATE_TEST_SUITE_P(WorkersAndTransports, ClusterEqualsOneProcess,
                         ::testing::Combine(::testing::Values(1, 2, 3, 4),
                                            ::testing::Values(TransportCase{"tcp", "tcp"},
                                                              TransportCase{"shm", "shm,self"})),
                         [](const ::testing::TestParamInfo<std::tuple<int, TransportCase>>& param) {
                           return std::to_string(std::get<0>(param.param)) + "workers_" +
                                  std::get<1>(param.param).name;
                         });

TEST(ClusterTest, EightClientsTenRequestsEachNoneLost) {
  Reference reference("random:tiny-llama");
  CoordinatorConfig config;
  config.queue_capacity = 128;
  Cluster cluster(3, "random:tiny-llama", {"--transports", "tcp"}, config);
  ASSERT_NE(cluster.coordinator, nullptr);
  const std::string address = cluster.coordinator->address();
  std::atomic<int> correct{0};
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      auto client = Client::connect(address);
      if (!client) {
        std::lock_guard lock(failures_mutex);
        failures.push_back(client.error().to_string());
        return;
      }
      std::vector<std::pair<RequestHandle, std::vector<int32_t>>> pending;
      for (int r = 0; r < 10; ++r) {
        const int length = 3 + (c * 10 + r) * 7 % 150;
        RequestOptions options;
        options.prompt_tokens = prompt_of(length, 97, static_cast<uint64_t>(c * 100 + r));
        options.max_new_tokens = 1 + r % 6;
        auto handle = (*client)->submit(options);
        if (!handle) {
          std::lock_guard lock(failures_mutex);
          failures.push_back(handle.error().to_string());
          continue;
        }
        pending.emplace_back(
            *handle, reference.tokens(options.prompt_tokens, options.max_new_tokens).tokens);
      }
      for (auto& [handle, want] : pending) {
        auto result = handle.result_within(120000);
        ++answered;
        if (result && result->tokens == want) {
          ++correct;
        } else {
          std::lock_guard lock(failures_mutex);
          failures.push_back(result ? "wrong tokens" : result.error().to_string());
        }
      }
    });
  }
  for (auto& thread : clients) thread.join();
  EXPECT_EQ(answered.load(), 80);
  EXPECT_EQ(correct.load(), 80);
  for (const std::string& failure : failures) ADD_FAILURE() << failure;
}

TEST(ClusterTest, KilledWorkerFailsItsRequestNamingItAndARestartedOneRejoins) {
  CoordinatorConfig config;
  config.heartbeat_timeout = 1500ms;
  Cluster cluster(2, "random:mini-llama", {"--transports", "tcp"}, config);
  ASSERT_NE(cluster.coordinator, nullptr);
  auto status = cluster.coordinator->status();
  ASSERT_TRUE(status);
  ASSERT_EQ(status->workers.size(), 2u);

  // A long prompt keeps both workers busy for a while; kill the first mid-request.
  RequestOptions options;
  options.prompt_tokens = prompt_of(3000, 512, 1);
  options.max_new_tokens = 4;
  auto handle = cluster.coordinator->submit(options);
  ASSERT_TRUE(handle);
  std::this_thread::sleep_for(300ms);
  cluster.workers[0]->kill(SIGKILL);
  const auto killed_at = std::chrono::steady_clock::now();
  auto failed = handle->result_within(30000);
  ASSERT_FALSE(failed) << "the request finished before the worker was killed";
  const auto noticed = std::chrono::steady_clock::now() - killed_at;
  EXPECT_LT(noticed, 5s);
  EXPECT_NE(failed.error().message.find("w0"), std::string::npos) << failed.error().message;

  // Later requests run on the survivor, with the single-process result.
  options.prompt_tokens = prompt_of(50, 512, 2);
  Reference reference("random:mini-llama");
  const std::vector<int32_t> want = reference.tokens(options.prompt_tokens, 4).tokens;
  ASSERT_EQ(want.size(), 4u);
  auto after = cluster.coordinator->submit(options);
  ASSERT_TRUE(after);
  auto survived = after->result_within(60000);
  ASSERT_TRUE(survived) << survived.error().to_string();
  EXPECT_EQ(survived->tokens, want);

  // A restarted worker rejoins and takes part again.
  cluster.add_worker("random:mini-llama", {"--transports", "tcp"});
  ASSERT_TRUE(cluster.coordinator->wait_for_workers(2, 60s).is_ok());
  auto again = cluster.coordinator->submit(options);
  ASSERT_TRUE(again);
  auto rejoined = again->result_within(60000);
  ASSERT_TRUE(rejoined) << rejoined.error().to_string();
  EXPECT_EQ(rejoined->tokens, want);
  std::map<uint64_t, int> workers;
  for (const LayerTimeline& layer : rejoined->timeline) ++workers[layer.worker_id];
  EXPECT_EQ(workers.size(), 2u);
}

TEST(ClusterTest, WorkerWithAnotherModelIsRefused) {
  Cluster cluster(1, "random:tiny-llama", {"--transports", "tcp"});
  ASSERT_NE(cluster.coordinator, nullptr);
  WorkerProcess stranger(cluster.coordinator->address(), "random:tiny-falcon", "stranger",
                         {"--transports", "tcp"});
  // The stranger exits: the coordinator refuses its model.
  for (int i = 0; i < 300 && stranger.running(); ++i) std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(stranger.running());
  auto status = cluster.coordinator->status();
  ASSERT_TRUE(status);
  EXPECT_EQ(status->workers.size(), 1u);
}

TEST(ClusterTest, BadRequestsGetOneClearError) {
  Cluster cluster(2, "random:tiny-llama", {"--transports", "tcp"});
  ASSERT_NE(cluster.coordinator, nullptr);
  RequestOptions empty;
  auto refused = cluster.coordinator->submit(empty);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("empty prompt"), std::string::npos);

  RequestOptions out_of_vocabulary;
  out_of_vocabulary.prompt_tokens = {1, 2, 5000, 3};
  // Refused at submission: the coordinator knows the workers' vocabulary and context.
  auto handle = cluster.coordinator->submit(out_of_vocabulary);
  ASSERT_FALSE(handle);
  EXPECT_NE(handle.error().message.find("5000"), std::string::npos) << handle.error().message;

  RequestOptions too_long;
  too_long.prompt_tokens = prompt_of(300, 97, 3);  // tiny-llama holds 256 positions
  handle = cluster.coordinator->submit(too_long);
  ASSERT_FALSE(handle);
  EXPECT_NE(handle.error().message.find("256"), std::string::npos) << handle.error().message;

  // Top-K log-probabilities: K above the vocabulary is refused by the coordinator, K negative
  // or above what a token may carry before the request leaves.
  RequestOptions top_k;
  top_k.prompt_tokens = {1, 2, 3};
  top_k.top_logprobs = 98;  // tiny-llama has 97 tokens
  handle = cluster.coordinator->submit(top_k);
  ASSERT_FALSE(handle);
  EXPECT_NE(handle.error().message.find("top 98"), std::string::npos) << handle.error().message;
  EXPECT_NE(handle.error().message.find("vocabulary size 97"), std::string::npos);
  for (int k : {-1, 1025}) {
    top_k.top_logprobs = k;
    auto refused_k = cluster.coordinator->submit(top_k);
    ASSERT_FALSE(refused_k);
    EXPECT_NE(refused_k.error().message.find("top_logprobs is " + std::to_string(k)),
              std::string::npos)
        << refused_k.error().message;
  }
}

TEST(ClusterTest, BusyBeyondTheQueue) {
  CoordinatorConfig config;
  config.queue_capacity = 2;
  config.max_in_flight = 1;
  Cluster cluster(1, "random:mini-llama", {"--transports", "tcp"}, config);
  ASSERT_NE(cluster.coordinator, nullptr);
  RequestOptions options;
  options.prompt_tokens = prompt_of(1500, 512, 4);
  std::vector<RequestHandle> accepted;
  std::vector<Error> refused;
  for (int i = 0; i < 5; ++i) {
    auto handle = cluster.coordinator->submit(options);
    if (handle) {
      accepted.push_back(*handle);
    } else {
      refused.push_back(handle.error());
    }
  }
  ASSERT_FALSE(refused.empty());
  EXPECT_EQ(refused.front().code, ErrorCode::kResourceExhausted);
  EXPECT_NE(refused.front().message.find("busy"), std::string::npos);
  // The accepted ones, queued behind each other, each get the single-process tokens.
  const std::vector<int32_t> want =
      Reference("random:mini-llama").tokens(options.prompt_tokens, options.max_new_tokens).tokens;
  ASSERT_EQ(want.size(), static_cast<size_t>(options.max_new_tokens));
  for (RequestHandle& handle : accepted) {
    auto result = handle.result_within(120000);
    ASSERT_TRUE(result) << result.error().to_string();
    EXPECT_EQ(result->tokens, want);
  }
}

}  // namespace
}  // namespace runahead
