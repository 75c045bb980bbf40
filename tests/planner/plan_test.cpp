// The plan of a request: how many and which workers, and which strategy cuts the prompt for
// each scheme, with and without a profile and start-up probes.
#include "planner/plan.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "planner/chain_solver.h"

namespace runahead {
namespace {

// `count` workers with start-up probes (later ones slower) and no requests running.
std::vector<PlanWorker> probed_workers(size_t count) {
  std::vector<PlanWorker> workers;
  for (size_t i = 0; i < count; ++i) {
    const double scale = 1.0 + 0.5 * static_cast<double>(i);
    workers.push_back({.chain = {"w" + std::to_string(i), "cpu", {1e-4 * scale, 1e-7 * scale}},
                       .active_requests = 0});
  }
  return workers;
}

std::vector<ChainWorker> chain_of(const std::vector<PlanWorker>& workers,
                                  const std::vector<size_t>& chosen) {
  std::vector<ChainWorker> chain;
  for (size_t index : chosen) chain.push_back(workers[index].chain);
  return chain;
}

// A profile for w0..w2 whose links are slow enough that fewer workers can win short prompts,
// with searched partitions for two workers.
Profile sample_profile() {
  Profile p;
  p.model.hash = "model";
  p.model.layers = 4;
  p.model.kv_bytes_per_token = 1024;
  p.overhead_seconds = 1e-4;
  for (int i = 0; i < 3; ++i) {
    p.workers.push_back({"w" + std::to_string(i), "cpu", {{1e-4, 1e-7}, 5e-4, 0.25}, 0.0});
  }
  p.default_link = {2e-4, 1e9};
  p.searched.push_back({1000, {0.6}, 10.0, 10.5});
  p.searched.push_back({3000, {0.7}, 30.0, 30.2});
  return p;
}

PlanRequest request_of(int64_t tokens, PartitionScheme scheme, size_t workers = 0) {
  PlanRequest request;
  request.prompt_tokens = tokens;
  request.scheme = scheme;
  request.workers = workers;
  return request;
}

TEST(PlanTest, NoWorkersIsUnavailable) {
  auto planned = plan(request_of(100, PartitionScheme::kEven), {}, nullptr);
  ASSERT_FALSE(planned);
  EXPECT_EQ(planned.error().code, ErrorCode::kUnavailable);
}

TEST(PlanTest, ExplicitCutsAreTakenAsGivenOnTheLeastBusyWorkers) {
  std::vector<PlanWorker> workers = probed_workers(3);
  workers[0].active_requests = 2;
  PlanRequest request = request_of(30, PartitionScheme::kExplicit);
  request.cuts = {0, 10, 30};
  auto planned = plan(request, workers, nullptr);
  ASSERT_TRUE(planned) << planned.error().to_string();
  EXPECT_EQ(planned->method, PlanMethod::kExplicit);
  EXPECT_EQ(planned->cuts, (Partition{0, 10, 30}));
  EXPECT_EQ(planned->chain, (std::vector<size_t>{1, 2}));
  EXPECT_TRUE(planned->fallback.empty());
}

TEST(PlanTest, ExplicitCutsMustFitThePrompt) {
  for (const Partition& cuts :
       {Partition{}, Partition{0}, Partition{0, 20, 20, 30}, Partition{1, 30}, Partition{0, 29}}) {
    PlanRequest request = request_of(30, PartitionScheme::kExplicit);
    request.cuts = cuts;
    auto planned = plan(request, probed_workers(4), nullptr);
    ASSERT_FALSE(planned) << cuts_text(cuts);
    EXPECT_EQ(planned.error().code, ErrorCode::kInvalidArgument) << cuts_text(cuts);
  }
}

TEST(PlanTest, MoreSlicesThanWorkersIsUnavailable) {
  PlanRequest request = request_of(40, PartitionScheme::kExplicit);
  request.cuts = {0, 10, 20, 30, 40};
  auto planned = plan(request, probed_workers(3), nullptr);
  ASSERT_FALSE(planned);
  EXPECT_EQ(planned.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(planned.error().message, "the partition asks for 4 workers, 3 are connected");
}

TEST(PlanTest, WorkerCountFollowsTheRequestThenThePromptAndTheLimit) {
  const std::vector<PlanWorker> workers = probed_workers(4);
  auto count = [&](const PlanRequest& request, const PlannerOptions& options) {
    auto planned = plan(request, workers, nullptr, options);
    EXPECT_TRUE(planned) << planned.error().to_string();
    return planned ? planned->chain.size() : size_t{0};
  };
  // 100 tokens at 32 per worker keep three busy.
  EXPECT_EQ(count(request_of(100, PartitionScheme::kEven), {}), 3U);
  EXPECT_EQ(count(request_of(1000, PartitionScheme::kEven), {}), 4U);
  EXPECT_EQ(count(request_of(10, PartitionScheme::kEven), {}), 1U);
  EXPECT_EQ(count(request_of(100, PartitionScheme::kEven), {.min_tokens_per_worker = 1}), 4U);
  EXPECT_EQ(count(request_of(1000, PartitionScheme::kEven), {.max_workers_per_request = 2}), 2U);
  // A count the request asks for overrides both, up to the workers there are.
  EXPECT_EQ(count(request_of(10, PartitionScheme::kEven, 3), {.max_workers_per_request = 2}), 3U);
  EXPECT_EQ(count(request_of(10, PartitionScheme::kEven, 9), {}), 4U);
}

TEST(PlanTest, FewerWorkersAreTheLeastBusyInChainOrder) {
  std::vector<PlanWorker> workers = probed_workers(4);
  workers[0].active_requests = 2;
  workers[2].active_requests = 1;
  auto planned = plan(request_of(1000, PartitionScheme::kEven, 2), workers, nullptr);
  ASSERT_TRUE(planned);
  EXPECT_EQ(planned->chain, (std::vector<size_t>{1, 3}));
  planned = plan(request_of(1000, PartitionScheme::kEven, 3), workers, nullptr);
  ASSERT_TRUE(planned);
  EXPECT_EQ(planned->chain, (std::vector<size_t>{1, 2, 3}));
}

TEST(PlanTest, EvenSplitsEquallyWhateverTheCosts) {
  auto planned = plan(request_of(1000, PartitionScheme::kEven), probed_workers(3), nullptr);
  ASSERT_TRUE(planned);
  EXPECT_EQ(planned->method, PlanMethod::kEven);
  EXPECT_EQ(planned->cuts, *even_partition(1000, 3));
  EXPECT_EQ(planned->chain, (std::vector<size_t>{0, 1, 2}));
}

TEST(PlanTest, BalancedWithoutAProfileUsesTheProbes) {
  const std::vector<PlanWorker> workers = probed_workers(3);
  auto planned = plan(request_of(1000, PartitionScheme::kBalanced), workers, nullptr);
  ASSERT_TRUE(planned);
  EXPECT_EQ(planned->method, PlanMethod::kProbedCosts);
  std::vector<SliceCost> costs;
  for (const PlanWorker& w : workers) costs.push_back(w.chain.measured);
  EXPECT_EQ(planned->cuts, *balanced_partition(1000, costs));
  EXPECT_NE(planned->cuts, *even_partition(1000, 3));
}

TEST(PlanTest, BalancedWithAnUnmeasuredWorkerIsEven) {
  std::vector<PlanWorker> workers = probed_workers(3);
  workers[1].chain.measured = {};
  auto planned = plan(request_of(1000, PartitionScheme::kBalanced), workers, nullptr);
  ASSERT_TRUE(planned);
  EXPECT_EQ(planned->method, PlanMethod::kEven);
  EXPECT_EQ(planned->cuts, *even_partition(1000, 3));
}

TEST(PlanTest, BalancedWithAProfileSolvesItsChainModel) {
  const Profile profile = sample_profile();
  const std::vector<PlanWorker> workers = probed_workers(3);
  for (int64_t tokens : {40, 200, 5000}) {
    // The request leaves the count open: the solver may use fewer workers.
    auto planned = plan(request_of(tokens, PartitionScheme::kBalanced), workers, &profile,
                        {.min_tokens_per_worker = 1});
    ASSERT_TRUE(planned) << planned.error().to_string();
    EXPECT_EQ(planned->method, PlanMethod::kChainModel);
    SolverOptions fewer;
    fewer.allow_fewer_workers = true;
    auto want = fastest_partition(profile.chain_model(chain_of(workers, {0, 1, 2})), tokens, fewer);
    ASSERT_TRUE(want);
    EXPECT_EQ(planned->cuts, want->cuts) << tokens;
    EXPECT_EQ(planned->chain, want->chain) << tokens;
  }
  // A count the request fixes: those workers, all of them.
  std::vector<PlanWorker> busy_first = workers;
  busy_first[0].active_requests = 1;
  auto planned = plan(request_of(40, PartitionScheme::kBalanced, 2), busy_first, &profile);
  ASSERT_TRUE(planned) << planned.error().to_string();
  auto want = fastest_partition(profile.chain_model(chain_of(workers, {1, 2})), 40);
  ASSERT_TRUE(want);
  EXPECT_EQ(planned->chain, (std::vector<size_t>{1, 2}));
  EXPECT_EQ(planned->cuts, want->cuts);
}

TEST(PlanTest, TheSolversSubChainMapsBackToTheWorkersGiven) {
  Profile profile = sample_profile();
  profile.default_link.latency_seconds = 1e-2;
  std::vector<PlanWorker> workers = probed_workers(3);
  workers[0].active_requests = 1;
  // Two of three workers (the idle ones), and a hop that a short prompt cannot pay for.
  auto planned = plan(request_of(8, PartitionScheme::kBalanced), workers, &profile,
                      {.min_tokens_per_worker = 1, .max_workers_per_request = 2});
  ASSERT_TRUE(planned) << planned.error().to_string();
  SolverOptions fewer;
  fewer.allow_fewer_workers = true;
  auto want = fastest_partition(profile.chain_model(chain_of(workers, {1, 2})), 8, fewer);
  ASSERT_TRUE(want);
  ASSERT_EQ(want->chain.size(), 1U);
  EXPECT_EQ(planned->chain, (std::vector<size_t>{1 + want->chain[0]}));
  EXPECT_EQ(planned->cuts, (Partition{0, 8}));
}

TEST(PlanTest, SearchedTakesTheProfileTable) {
  const Profile profile = sample_profile();
  for (int64_t tokens : {1000, 2000, 3000, 5000}) {
    auto planned =
        plan(request_of(tokens, PartitionScheme::kSearched, 2), probed_workers(3), &profile);
    ASSERT_TRUE(planned) << planned.error().to_string();
    EXPECT_EQ(planned->method, PlanMethod::kSearched);
    EXPECT_EQ(planned->cuts, *profile.searched_cuts(tokens, 2)) << tokens;
    EXPECT_EQ(planned->chain, (std::vector<size_t>{0, 1}));
    EXPECT_TRUE(planned->fallback.empty());
  }
}

TEST(PlanTest, SearchedWithoutATableIsBalancedAndSaysWhy) {
  const Profile profile = sample_profile();
  const std::vector<PlanWorker> workers = probed_workers(3);
  // Nothing searched for three workers: the profile's model.
  auto planned = plan(request_of(2000, PartitionScheme::kSearched, 3), workers, &profile);
  ASSERT_TRUE(planned) << planned.error().to_string();
  EXPECT_EQ(planned->method, PlanMethod::kChainModel);
  auto want = fastest_partition(profile.chain_model(chain_of(workers, {0, 1, 2})), 2000);
  ASSERT_TRUE(want);
  EXPECT_EQ(planned->cuts, want->cuts);
  EXPECT_EQ(planned->fallback,
            "no searched partition for 3 worker(s) in the profile; balanced "
            "instead");
  // No profile: the probes.
  planned = plan(request_of(2000, PartitionScheme::kSearched, 2), workers, nullptr);
  ASSERT_TRUE(planned) << planned.error().to_string();
  EXPECT_EQ(planned->method, PlanMethod::kProbedCosts);
  EXPECT_EQ(planned->fallback,
            "no searched partition for 2 worker(s) (no profile); balanced "
            "instead");
}

TEST(PlanTest, EvenIgnoresTheProfile) {
  const Profile profile = sample_profile();
  auto planned = plan(request_of(999, PartitionScheme::kEven, 3), probed_workers(3), &profile);
  ASSERT_TRUE(planned);
  EXPECT_EQ(planned->method, PlanMethod::kEven);
  EXPECT_EQ(planned->cuts, *even_partition(999, 3));
}

}  // namespace
}  // namespace runahead
