// A request's own deadline on real worker processes: with one worker of its chain stopped
// (SIGSTOP), the request ends with kTimeout naming it and the stalled worker once its deadline
// passes; the workers are told to cancel it, and once the stopped worker resumes the next
// request runs on both and gives the single-process tokens.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runahead/coordinator.h"
#include "tests/cluster/test_cluster.h"
#include "tests/support/random_model.h"

namespace runahead {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

TEST(RequestDeadline, StalledChainTimesOutAndTheWorkersServeTheNextRequest) {
  CoordinatorConfig config;
  config.heartbeat_timeout = 30s;  // the stopped worker stays registered throughout
  testing::TestCluster cluster(2, "random:tiny-llama", {"--transports", "tcp"}, config);
  ASSERT_NE(cluster.coordinator, nullptr);
  testing::SingleProcess reference("random:tiny-llama");

  const std::vector<int32_t> prompt = testing::random_tokens(40, 97, 11);
  RequestOptions options;
  options.prompt_tokens = prompt;
  options.max_new_tokens = 4;
  options.partition.scheme = PartitionOptions::Scheme::kExplicit;
  options.partition.cuts = {0, 20, 40};

  cluster.workers.at(1)->kill(SIGSTOP);
  RequestOptions stalled = options;
  stalled.timeout_ms = 1000;
  const auto start = std::chrono::steady_clock::now();
  auto handle = cluster.coordinator->submit(stalled);
  ASSERT_TRUE(handle) << handle.error().to_string();
  auto result = handle->result_within(20000);
  const auto waited = std::chrono::steady_clock::now() - start;
  cluster.workers.at(1)->kill(SIGCONT);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kTimeout) << result.error().to_string();
  EXPECT_THAT(result.error().message, HasSubstr("timed out after 1000 ms (its own deadline)"));
  EXPECT_THAT(result.error().message, HasSubstr("w1"));
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 5s);

  auto status = cluster.coordinator->status();
  ASSERT_TRUE(status);
  EXPECT_EQ(status->active_requests, 0u);
  ASSERT_EQ(status->workers.size(), 2u);
  for (const WorkerState& worker : status->workers) EXPECT_EQ(worker.active_requests, 0u);

  auto next = cluster.coordinator->submit(options);
  ASSERT_TRUE(next);
  auto served = next->result_within(60000);
  ASSERT_TRUE(served) << served.error().to_string();
  EXPECT_EQ(served->tokens, reference.tokens(prompt, 4).tokens);
  EXPECT_EQ(served->cuts, (std::vector<int64_t>{0, 20, 40}));
}

}  // namespace
}  // namespace runahead
