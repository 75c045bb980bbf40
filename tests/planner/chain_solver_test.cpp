// The chain model's TTFT prediction on hand-worked pipelines, and the solver against brute
// force over every partition (and every sub-chain) of small synthetic instances.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <random>

#include "planner/chain_model.h"
#include "planner/chain_solver.h"
#include "planner/partition.h"

namespace runahead {
namespace {

WorkerCost linear_worker(double per_token, double qkv_fraction) {
  return WorkerCost{.slice = {per_token, 0.0}, .fixed_seconds = 0.0, .qkv_fraction = qkv_fraction};
}

double ttft(const ChainModel& model, const Partition& cuts, std::span<const size_t> chain = {}) {
  auto predicted = predict_ttft(model, cuts, chain);
  EXPECT_TRUE(predicted) << predicted.error().to_string();
  return predicted ? *predicted : std::numeric_limits<double>::quiet_NaN();
}

TEST(ChainModelTest, OneWorkerTakesItsSliceTimeAndTheOverhead) {
  ChainModel model = ChainModel::uniform(
      {WorkerCost{.slice = {1e-3, 1e-6}, .fixed_seconds = 0.01, .qkv_fraction = 0.3}}, {}, 4, 100.0,
      0.002);
  const double want = 0.01 + 1e-3 * 50 + 1e-6 * 50 * 25.0 + 0.002;
  EXPECT_NEAR(ttft(model, {0, 50}), want, 1e-12);
}

TEST(ChainModelTest, TwoWorkersTwoLayersByHand) {
  // Each worker: 2 tokens at 1 s per token, half before the prefix: q = 1 s, f = 1 s per layer
  // (2 layers). 10 bytes per token at 20 B/s: the own block takes 1 s, then 0.5 s latency.
  ChainModel model =
      ChainModel::uniform({linear_worker(1.0, 0.5), linear_worker(1.0, 0.5)}, {0.5, 20.0}, 2, 10.0);
  for (auto& worker : model.workers) worker.slice.per_token = 2.0;  // 4 s over 2 tokens
  // Worker 0: layer 0 projected at 1, done at 2; layer 1 projected at 3, done at 4.
  // Its blocks land at 1 + 1 + 0.5 = 2.5 and 3 + 1 + 0.5 = 4.5.
  // Worker 1: layer 0 ready at 1, prefix at 2.5, done 3.5; layer 1 ready 4.5, prefix 4.5,
  // done 5.5.
  EXPECT_NEAR(ttft(model, {0, 2, 4}), 5.5, 1e-12);
}

TEST(ChainModelTest, BlocksAreForwardedCutThroughAndEarlierFinishesAreOffThePath) {
  // One layer. Worker 1 is slow after its projection (f = 10 s), but worker 0's block passes
  // through it as it lands and its own block leaves after projecting (q = 1 s).
  ChainModel model = ChainModel::uniform(
      {linear_worker(2.0, 0.5),
       WorkerCost{.slice = {2.0, 0.0}, .fixed_seconds = 9.0, .qkv_fraction = 0.5},
       linear_worker(2.0, 0.5)},
      {1.0, 0.0}, 1, 8.0);
  // Worker 0's block: projected at 1, at worker 1 at 2, at worker 2 at 3; worker 1's own block
  // at worker 2 at 2. Worker 2: projected at 1, prefix complete at 3, done at 4.
  EXPECT_NEAR(ttft(model, {0, 1, 2, 3}), 4.0, 1e-12);
}

TEST(ChainModelTest, ForwardingCostsOnlyAWorkerWithASuccessor) {
  // Three one-token workers, two layers, nothing before the prefix (q = 0), free links: 1 s per
  // layer each. Forwarding its one-token prefix costs the middle worker 2 s more per layer:
  // its layer-1 block leaves at 3, so the last worker finishes layer 1 at 4 instead of 2.
  std::vector<WorkerCost> workers(3, linear_worker(2.0, 0.0));
  workers[1].per_prefix_token = 4.0;
  EXPECT_NEAR(ttft(ChainModel::uniform(workers, {}, 2, 1.0), {0, 1, 2, 3}), 4.0, 1e-12);
  // The last worker forwards nothing: the same cost on it changes nothing.
  workers[1].per_prefix_token = 0.0;
  workers[2].per_prefix_token = 4.0;
  EXPECT_NEAR(ttft(ChainModel::uniform(workers, {}, 2, 1.0), {0, 1, 2, 3}), 2.0, 1e-12);
}

TEST(ChainModelTest, ASlowLinkChargesEveryLayer) {
  const int layers = 16;
  ChainModel model = ChainModel::uniform({linear_worker(1e-4, 0.25), linear_worker(1e-4, 0.25)},
                                         {0.0, 1e9}, layers, 1e4);  // 10 ms per 1000-token block
  const double predicted = ttft(model, {0, 1000, 1001});
  // The link carries 16 blocks of 10 ms one after the other.
  EXPECT_GT(predicted, layers * 0.01);
  EXPECT_LT(predicted, layers * 0.01 + 0.1 + 1e-3);
}

TEST(ChainModelTest, RefusesMalformedInput) {
  ChainModel model =
      ChainModel::uniform({linear_worker(1.0, 0.5), linear_worker(1.0, 0.5)}, {}, 2, 1.0);
  EXPECT_FALSE(predict_ttft(model, {0, 3}));     // one slice for two workers
  EXPECT_FALSE(predict_ttft(model, {0, 2, 2}));  // an empty slice
  EXPECT_FALSE(predict_ttft(model, {1, 2, 3}));  // does not start at 0
  const std::vector<size_t> backwards = {1, 0};
  EXPECT_FALSE(predict_ttft(model, {0, 1, 2}, backwards));
  model.workers[1].qkv_fraction = 1.5;
  EXPECT_FALSE(model.validate().is_ok());
  EXPECT_FALSE(fastest_partition(model, 10));
}

// A random instance: costs, links (some free, some slow), layers.
ChainModel random_model(std::mt19937_64& rng, size_t workers) {
  std::uniform_real_distribution<double> per_token(1e-4, 1e-2);
  std::uniform_real_distribution<double> per_key(0.0, 5e-4);
  std::uniform_real_distribution<double> fixed(0.0, 5e-2);
  std::uniform_real_distribution<double> fraction(0.0, 0.6);
  std::uniform_int_distribution<int> layers(1, 5);
  std::uniform_int_distribution<int> coin(0, 3);
  std::vector<WorkerCost> costs(workers);
  for (WorkerCost& cost : costs) {
    cost.slice = {per_token(rng), coin(rng) == 0 ? 0.0 : per_key(rng)};
    cost.fixed_seconds = coin(rng) == 0 ? fixed(rng) : 0.0;
    cost.qkv_fraction = fraction(rng);
    cost.per_prefix_token = coin(rng) == 0 ? per_token(rng) : 0.0;
  }
  ChainModel model = ChainModel::uniform(costs, {}, layers(rng), 100.0);
  std::uniform_real_distribution<double> latency(0.0, 2e-2);
  std::uniform_real_distribution<double> bandwidth(1e4, 1e6);
  for (size_t i = 0; i < workers; ++i) {
    for (size_t j = i + 1; j < workers; ++j) {
      model.links[i][j] = {coin(rng) == 0 ? 0.0 : latency(rng),
                           coin(rng) == 0 ? 0.0 : bandwidth(rng)};
    }
  }
  model.overhead_seconds = coin(rng) == 0 ? 0.0 : 1e-3;
  return model;
}

// The lowest predicted TTFT over every partition of every allowed chain.
double brute_force(const ChainModel& model, int64_t tokens, bool allow_fewer) {
  double best = std::numeric_limits<double>::infinity();
  const size_t workers = model.workers.size();
  for (size_t mask = 1; mask < (size_t{1} << workers); ++mask) {
    std::vector<size_t> chain;
    for (size_t i = 0; i < workers; ++i) {
      if ((mask >> i) & 1U) chain.push_back(i);
    }
    if (!allow_fewer && chain.size() != workers) continue;
    if (static_cast<int64_t>(chain.size()) > tokens) continue;
    Partition cuts(chain.size() + 1, 0);
    cuts.back() = tokens;
    std::function<void(size_t)> place = [&](size_t index) {
      if (index == chain.size()) {
        best = std::min(best, *predict_ttft(model, cuts, chain));
        return;
      }
      for (int64_t cut = cuts[index - 1] + 1;
           cut <= tokens - static_cast<int64_t>(chain.size() - index); ++cut) {
        cuts[index] = cut;
        place(index + 1);
      }
    };
    place(1);
  }
  return best;
}

void expect_valid_plan(const ChainModel& model, const ChainPlan& plan, int64_t tokens) {
  ASSERT_EQ(plan.cuts.size(), plan.chain.size() + 1);
  EXPECT_EQ(plan.cuts.front(), 0);
  EXPECT_EQ(plan.cuts.back(), tokens);
  for (size_t i = 0; i + 1 < plan.cuts.size(); ++i) EXPECT_LT(plan.cuts[i], plan.cuts[i + 1]);
  for (size_t i = 0; i + 1 < plan.chain.size(); ++i) EXPECT_LT(plan.chain[i], plan.chain[i + 1]);
  EXPECT_NEAR(ttft(model, plan.cuts, plan.chain), plan.predicted_seconds,
              1e-12 * plan.predicted_seconds);
}

TEST(ChainSolverTest, MatchesBruteForceOnRandomModels) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> worker_count(1, 4);
  std::uniform_int_distribution<int64_t> length(1, 26);
  int fewer_chosen = 0;
  for (int trial = 0; trial < 300; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    const ChainModel model = random_model(rng, static_cast<size_t>(worker_count(rng)));
    const bool allow_fewer = trial % 2 == 0;
    const int64_t tokens = std::max<int64_t>(
        length(rng), allow_fewer ? 1 : static_cast<int64_t>(model.workers.size()));
    SolverOptions options;
    options.allow_fewer_workers = allow_fewer;
    auto plan = fastest_partition(model, tokens, options);
    ASSERT_TRUE(plan) << plan.error().to_string();
    expect_valid_plan(model, *plan, tokens);
    if (!allow_fewer) {
      EXPECT_EQ(plan->chain.size(), model.workers.size());
    }
    if (plan->chain.size() < model.workers.size()) ++fewer_chosen;
    EXPECT_TRUE(plan->exhaustive);
    const double best = brute_force(model, tokens, allow_fewer);
    EXPECT_LE(plan->predicted_seconds, best * (1.0 + 1e-9));
  }
  // The instances are varied enough that dropping workers sometimes wins.
  EXPECT_GT(fewer_chosen, 0);
}

TEST(ChainSolverTest, CoarseGridThenRefinementStaysCloseToTheOptimum) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 40; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    const ChainModel model = random_model(rng, 3);
    const int64_t tokens = 60;
    SolverOptions options;
    options.grid_positions = 16;  // a step of 4 tokens, then refined
    auto plan = fastest_partition(model, tokens, options);
    ASSERT_TRUE(plan) << plan.error().to_string();
    expect_valid_plan(model, *plan, tokens);
    EXPECT_FALSE(plan->exhaustive);
    EXPECT_LE(plan->predicted_seconds, brute_force(model, tokens, false) * 1.02);
  }
}

TEST(ChainSolverTest, WithoutTransferCostsAgreesWithTheBalancedMakespan) {
  // With free links and nothing before the prefix, the last worker finishes no later than the
  // slowest worker's total (makespan) and no earlier than (L - 1) / L of it: the optimum lies
  // between (L - 1) / L and 1 times the balanced partition's makespan.
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> per_token(1e-5, 1e-3);
  std::uniform_real_distribution<double> per_key(0.0, 1e-6);
  std::uniform_int_distribution<int> worker_count(1, 4);
  for (int layers : {4, 32, 1000}) {
    for (int trial = 0; trial < 30; ++trial) {
      SCOPED_TRACE("layers " + std::to_string(layers) + ", trial " + std::to_string(trial));
      std::vector<SliceCost> slices(static_cast<size_t>(worker_count(rng)));
      std::vector<WorkerCost> costs;
      for (SliceCost& slice : slices) {
        slice = {per_token(rng), per_key(rng)};
        costs.push_back(WorkerCost{.slice = slice, .fixed_seconds = 0.0, .qkv_fraction = 0.0});
      }
      const ChainModel model = ChainModel::uniform(costs, {}, layers, 4096.0);
      const int64_t tokens = 2000 + trial * 97;
      auto balanced = balanced_partition(tokens, slices);
      ASSERT_TRUE(balanced);
      const double makespan = predicted_makespan(*balanced, slices);
      auto plan = fastest_partition(model, tokens);
      ASSERT_TRUE(plan) << plan.error().to_string();
      expect_valid_plan(model, *plan, tokens);
      const double share = (layers - 1.0) / layers;
      EXPECT_LE(plan->predicted_seconds, makespan * (1.0 + 1e-9));
      EXPECT_GE(plan->predicted_seconds, makespan * share * (1.0 - 1e-9));
      // And the plan's own makespan is within a layer's share of the balanced one.
      EXPECT_LE(predicted_makespan(plan->cuts, slices), makespan / share * (1.0 + 1e-9));
      // The balanced partition itself is predicted no better than the plan.
      EXPECT_GE(ttft(model, *balanced), plan->predicted_seconds * (1.0 - 1e-12));
    }
  }
}

TEST(ChainSolverTest, ExpensiveHopsMakeShortPromptsUseFewerWorkers) {
  const WorkerCost worker{.slice = {1e-4, 1e-8}, .fixed_seconds = 0.0, .qkv_fraction = 0.25};
  const ChainModel model =
      ChainModel::uniform({worker, worker, worker, worker}, {5e-3, 1e9}, 8, 1024.0);
  SolverOptions options;
  options.allow_fewer_workers = true;
  auto short_plan = fastest_partition(model, 16, options);
  ASSERT_TRUE(short_plan);
  EXPECT_EQ(short_plan->chain.size(), 1U);
  auto long_plan = fastest_partition(model, 20000, options);
  ASSERT_TRUE(long_plan);
  EXPECT_EQ(long_plan->chain.size(), 4U);
}

TEST(ChainSolverTest, ASlowerWorkerGetsFewerTokens) {
  const WorkerCost fast{.slice = {1e-4, 1e-8}, .fixed_seconds = 0.0, .qkv_fraction = 0.25};
  WorkerCost slow = fast;
  slow.slice.per_token *= 3.0;
  slow.slice.per_key *= 3.0;
  const ChainModel model = ChainModel::uniform({slow, fast}, {1e-5, 1e10}, 16, 1024.0);
  auto plan = fastest_partition(model, 4096);
  ASSERT_TRUE(plan);
  // Even with the attention work pushing tokens forward, the slow worker 0 takes less.
  EXPECT_LT(plan->cuts[1], 4096 - plan->cuts[1]);
}

TEST(ChainSolverTest, PlansALongPromptOnEightWorkersQuickly) {
  const WorkerCost worker{.slice = {2e-5, 2e-9}, .fixed_seconds = 1e-3, .qkv_fraction = 0.25};
  const ChainModel model =
      ChainModel::uniform(std::vector<WorkerCost>(8, worker), {2e-5, 2e11}, 32, 16384.0, 5e-4);
  const auto start = std::chrono::steady_clock::now();
  auto plan = fastest_partition(model, 32768);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(plan) << plan.error().to_string();
  expect_valid_plan(model, *plan, 32768);
  auto even = even_partition(32768, 8);
  ASSERT_TRUE(even);
  EXPECT_LT(plan->predicted_seconds, ttft(model, *even));
  // Earlier workers take more tokens (they see fewer keys).
  EXPECT_GT(plan->cuts[1] - plan->cuts[0], plan->cuts[8] - plan->cuts[7]);
  EXPECT_LT(seconds, 2.0);
  std::cout << "8 workers, 32768 tokens: planned in " << seconds * 1e3 << " ms\n";
}

}  // namespace
}  // namespace runahead
