// Golden references through a real cluster: a coordinator in this process and worker processes
// (`runahead worker`, K/V over UCX on loopback) on a Hugging Face checkpoint. The long prompt
// split over three workers gives transformers' first-token logits and greedy continuation; a
// request past Mistral's sliding window is refused by the coordinator before dispatch.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/host_model.h"
#include "runahead/coordinator.h"
#include "tests/cluster/worker_process.h"
#include "tests/golden/golden_reference.h"

namespace runahead {
namespace {

using namespace std::chrono_literals;
using testing::GoldenReference;
using ::testing::HasSubstr;
using testing::WorkerProcess;

// As golden_test: each row on its own scale; the cluster's slices only reorder some sums.
constexpr double kRowTolerance = 2e-5;

struct GoldenCluster {
  GoldenCluster(const std::string& dir, int count) {
    CoordinatorConfig config;
    config.model_path = dir;
    config.min_tokens_per_worker = 1;
    auto started = Coordinator::start(config);
    EXPECT_TRUE(started) << started.error().to_string();
    if (!started) return;
    coordinator = std::move(started).value();
    for (int i = 0; i < count; ++i) {
      workers.push_back(
          std::make_unique<WorkerProcess>(coordinator->address(), dir, "g" + std::to_string(i),
                                          std::vector<std::string>{"--transports", "tcp"}));
    }
    const Status joined = coordinator->wait_for_workers(static_cast<size_t>(count), 60s);
    EXPECT_TRUE(joined.is_ok()) << joined.to_string();
    if (!joined.is_ok()) coordinator.reset();
  }

  std::unique_ptr<Coordinator> coordinator;
  std::vector<std::unique_ptr<WorkerProcess>> workers;
};

Result<GoldenReference> reference_of(const std::string& dir, const std::string& stem) {
  RUNAHEAD_ASSIGN_OR_RETURN(HostModel host, load_model(dir));
  return testing::load_golden_reference(dir, stem, host.config.vocab_size);
}

TEST(GoldenClusterTest, ThreeWorkersMatchTheLongReference) {
  int checked = 0;
  for (const std::string& folder : testing::golden_folders()) {
    const std::string dir = testing::golden_root() + "/" + folder;
    if (!std::filesystem::exists(dir + "/long.json")) continue;
    SCOPED_TRACE(folder);
    auto ref = reference_of(dir, "long");
    ASSERT_TRUE(ref.is_ok()) << ref.error().to_string();
    GoldenCluster cluster(dir, 3);
    ASSERT_NE(cluster.coordinator, nullptr);
    RequestOptions options;
    options.prompt_tokens = ref->prompt;
    options.max_new_tokens = static_cast<int>(ref->continuation.size());
    options.return_logits = true;
    auto handle = cluster.coordinator->submit(options);
    ASSERT_TRUE(handle) << handle.error().to_string();
    auto result = handle->result_within(120000);
    ASSERT_TRUE(result) << result.error().to_string();
    EXPECT_EQ(result->cuts.size(), 4u) << "the prompt was not split over the three workers";
    EXPECT_EQ(result->tokens, ref->continuation);
    ASSERT_FALSE(result->logits.empty());
    ASSERT_EQ(ref->logit_positions.back(), static_cast<int64_t>(ref->prompt.size()) - 1);
    const double error = testing::row_relative_error(
        result->logits.front(), ref->logits_row(ref->logit_positions.size() - 1));
    EXPECT_LE(error, kRowTolerance);
    ++checked;
  }
  EXPECT_GE(checked, 1) << "no golden folder holds a long.json";
}

TEST(GoldenClusterTest, CoordinatorRefusesPastTheSlidingWindowBeforeDispatch) {
  const std::string dir = testing::golden_root() + "/mistral_window";
  auto ref = reference_of(dir, "golden");
  ASSERT_TRUE(ref.is_ok()) << ref.error().to_string();
  GoldenCluster cluster(dir, 2);
  ASSERT_NE(cluster.coordinator, nullptr);

  // Inside the window (29 + 8 tokens of a 48-position window): transformers' continuation.
  RequestOptions options;
  options.prompt_tokens = ref->prompt;
  options.max_new_tokens = static_cast<int>(ref->continuation.size());
  auto inside = cluster.coordinator->submit(options);
  ASSERT_TRUE(inside) << inside.error().to_string();
  auto result = inside->result_within(60000);
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_EQ(result->tokens, ref->continuation);

  // One position past it.
  options.max_new_tokens = 48 - static_cast<int>(ref->prompt.size()) + 2;
  auto past = cluster.coordinator->submit(options);
  std::string message;
  if (!past) {
    message = past.error().message;
  } else {
    auto refused = past->result_within(60000);
    ASSERT_FALSE(refused) << "a request of 49 positions ran on a 48-position window";
    message = refused.error().message;
  }
  EXPECT_THAT(message, HasSubstr("sliding window of 48"));
  EXPECT_THAT(message, HasSubstr("prompt of 29 tokens"));
  EXPECT_THAT(message, HasSubstr("the cluster's model"));  // the coordinator's, not a worker's
}

}  // namespace
}  // namespace runahead
