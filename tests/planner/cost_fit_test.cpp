// Fitting the cost model to measurements made with known costs, and the measured partition
// search (KVR-S) on a model standing in for the cluster.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "planner/chain_solver.h"
#include "planner/cost_fit.h"
#include "planner/partition_search.h"

namespace runahead {
namespace {

std::vector<ComputeSample> samples_of(const WorkerCost& truth, double noise, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> jitter(1.0 - noise, 1.0 + noise);
  std::vector<ComputeSample> samples;
  for (int64_t begin : {0, 100, 700, 3000}) {
    for (int64_t tokens : {16, 128, 512, 2048}) {
      samples.push_back({begin, tokens, truth.seconds(begin, tokens) * jitter(rng)});
    }
  }
  return samples;
}

TEST(CostFitTest, RecoversExactCostTerms) {
  const WorkerCost truth{.slice = {2e-5, 3e-9}, .fixed_seconds = 1.5e-3, .qkv_fraction = 0.3};
  auto fit = fit_compute(samples_of(truth, 0.0, 1), 0.3);
  ASSERT_TRUE(fit) << fit.error().to_string();
  EXPECT_NEAR(fit->cost.slice.per_token, 2e-5, 2e-5 * 1e-6);
  EXPECT_NEAR(fit->cost.slice.per_key, 3e-9, 3e-9 * 1e-6);
  EXPECT_NEAR(fit->cost.fixed_seconds, 1.5e-3, 1.5e-3 * 1e-6);
  EXPECT_DOUBLE_EQ(fit->cost.qkv_fraction, 0.3);
  EXPECT_LT(fit->relative_rms, 1e-9);
}

TEST(CostFitTest, NoisyTimesGiveCloseTermsAndTheirError) {
  const WorkerCost truth{.slice = {2e-5, 3e-9}, .fixed_seconds = 1.5e-3, .qkv_fraction = 0.3};
  auto fit = fit_compute(samples_of(truth, 0.02, 2), 0.3);
  ASSERT_TRUE(fit) << fit.error().to_string();
  EXPECT_NEAR(fit->cost.slice.per_token, 2e-5, 2e-5 * 0.1);
  EXPECT_NEAR(fit->cost.slice.per_key, 3e-9, 3e-9 * 0.1);
  EXPECT_GT(fit->relative_rms, 1e-3);
  EXPECT_LT(fit->relative_rms, 0.03);
}

TEST(CostFitTest, RecoversTheForwardingTermWhereTheWorkerForwarded) {
  const WorkerCost truth{
      .slice = {2e-5, 3e-9}, .fixed_seconds = 1e-3, .qkv_fraction = 0.3, .per_prefix_token = 4e-6};
  std::vector<ComputeSample> samples;
  for (int64_t begin : {0, 100, 700, 3000}) {
    for (int64_t tokens : {16, 128, 512, 2048}) {
      samples.push_back(
          {begin, tokens, truth.seconds(begin, tokens) + truth.forwarding_seconds(begin), true});
    }
  }
  auto fit = fit_compute(samples, 0.3);
  ASSERT_TRUE(fit) << fit.error().to_string();
  EXPECT_NEAR(fit->cost.per_prefix_token, 4e-6, 4e-6 * 1e-6);
  EXPECT_NEAR(fit->cost.slice.per_token, 2e-5, 2e-5 * 1e-6);
  // Without forwarding the prefix costs nothing: c stays zero.
  auto plain = fit_compute(samples_of(truth, 0.0, 3), 0.3);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->cost.per_prefix_token, 0.0);
}

TEST(CostFitTest, TermsStayNonNegative) {
  // Times that shrink per key would want b < 0: the fit drops the term instead.
  std::vector<ComputeSample> samples;
  for (int64_t begin : {0, 1000, 4000}) {
    for (int64_t tokens : {10, 100, 1000}) {
      samples.push_back({begin, tokens, 1e-3 + 1e-5 * tokens - 1e-12 * tokens * begin});
    }
  }
  auto fit = fit_compute(samples, 0.25);
  ASSERT_TRUE(fit) << fit.error().to_string();
  EXPECT_GE(fit->cost.slice.per_key, 0.0);
  EXPECT_GE(fit->cost.fixed_seconds, 0.0);
  EXPECT_GT(fit->cost.slice.per_token, 0.0);
  EXPECT_FALSE(fit_compute({}, 0.25));
  EXPECT_FALSE(fit_compute(std::vector<ComputeSample>{{0, 10, 0.0}}, 0.25));
}

// A three-worker cluster with a slow link.
ChainModel cluster_model(LinkCost link, double overhead) {
  std::vector<WorkerCost> workers = {
      {.slice = {1e-5, 1e-9}, .fixed_seconds = 1e-3, .qkv_fraction = 0.25},
      {.slice = {1.2e-5, 1.1e-9}, .fixed_seconds = 1e-3, .qkv_fraction = 0.25},
      {.slice = {1e-5, 1e-9}, .fixed_seconds = 2e-3, .qkv_fraction = 0.25}};
  return ChainModel::uniform(workers, link, 16, 8192.0, overhead);
}

std::vector<TtftSample> ttft_samples(const ChainModel& truth) {
  std::vector<TtftSample> samples;
  for (int64_t tokens : {256, 1024, 4096}) {
    for (const Partition& cuts :
         {Partition{0, tokens / 3, 2 * tokens / 3, tokens},
          Partition{0, tokens / 2, tokens - 1, tokens}, Partition{0, 1, 2, tokens},
          Partition{0, tokens - 2, tokens - 1, tokens}}) {
      samples.push_back({{}, cuts, *predict_ttft(truth, cuts)});
    }
  }
  return samples;
}

TEST(CostFitTest, RecoversTheLinkAndTheOverhead) {
  const LinkCost link{2e-4, 2e9};
  const ChainModel truth = cluster_model(link, 3e-3);
  const std::vector<TtftSample> samples = ttft_samples(truth);
  ChainModel compute_only = cluster_model({}, 0.0);
  auto fit = fit_link_and_overhead(compute_only, samples);
  ASSERT_TRUE(fit) << fit.error().to_string();
  // On the grid (steps of 2^(1/2)) the nearest values, and predictions within a few percent.
  EXPECT_GT(fit->link.latency_seconds, link.latency_seconds / 1.5);
  EXPECT_LT(fit->link.latency_seconds, link.latency_seconds * 1.5);
  EXPECT_GT(fit->link.bytes_per_second, link.bytes_per_second / 1.5);
  EXPECT_LT(fit->link.bytes_per_second, link.bytes_per_second * 1.5);
  EXPECT_NEAR(fit->overhead_seconds, 3e-3, 1e-3);
  EXPECT_LT(fit->relative_rms, 0.05);
  ChainModel fitted = cluster_model(fit->link, fit->overhead_seconds);
  auto error = prediction_error(fitted, samples);
  ASSERT_TRUE(error);
  EXPECT_NEAR(*error, fit->relative_rms, 1e-12);
}

TEST(CostFitTest, AFreeLinkIsFittedAsFree) {
  const ChainModel truth = cluster_model({}, 1e-3);
  auto fit = fit_link_and_overhead(cluster_model({}, 0.0), ttft_samples(truth));
  ASSERT_TRUE(fit) << fit.error().to_string();
  EXPECT_EQ(fit->link.latency_seconds, 0.0);
  EXPECT_EQ(fit->link.bytes_per_second, 0.0);  // no limit
  EXPECT_NEAR(fit->overhead_seconds, 1e-3, 1e-9);
  EXPECT_FALSE(fit_link_and_overhead(truth, {}));
}

TEST(CostFitTest, RefiningToTtftRepairsMisMeasuredComputeTerms) {
  const ChainModel truth = cluster_model({2e-4, 2e9}, 3e-3);
  const std::vector<TtftSample> samples = ttft_samples(truth);
  // The last worker's compute measured at a third (work still queued on the device when its
  // clock stopped); the link and overhead fitted to that, then everything refined.
  ChainModel start = cluster_model({}, 0.0);
  start.workers[2].slice.per_token /= 3.0;
  start.workers[2].slice.per_key /= 3.0;
  start.workers[2].fixed_seconds = 0.0;
  auto before = prediction_error(start, samples);
  ASSERT_TRUE(before);
  EXPECT_GT(*before, 0.1);
  ChainModel refined = start;
  auto link = fit_link_and_overhead(refined, samples);
  ASSERT_TRUE(link);
  for (auto& row : refined.links) std::fill(row.begin(), row.end(), link->link);
  refined.overhead_seconds = link->overhead_seconds;
  EXPECT_GT(link->relative_rms, 0.1);  // the link alone cannot make up for it
  const std::vector<size_t> last = {2};
  auto after = refine_to_ttft(refined, samples, last);
  ASSERT_TRUE(after) << after.error().to_string();
  EXPECT_LT(*after, 0.02);
  EXPECT_NEAR(*prediction_error(refined, samples), *after, 1e-12);
  // The repaired terms are close to the truth where the samples depend on them.
  EXPECT_NEAR(refined.workers[2].slice.per_token, 1e-5, 0.3e-5);
  // And the refined model still plans about as well as the truth would.
  auto plan = fastest_partition(refined, 3000);
  auto best = fastest_partition(truth, 3000);
  ASSERT_TRUE(plan && best);
  EXPECT_LT(*predict_ttft(truth, plan->cuts), best->predicted_seconds * 1.03);
  // The other workers' terms are left as measured.
  EXPECT_EQ(refined.workers[0].slice.per_token, start.workers[0].slice.per_token);
  EXPECT_EQ(refined.workers[1].fixed_seconds, start.workers[1].fixed_seconds);
  EXPECT_FALSE(refine_to_ttft(refined, {}, last));
  const std::vector<size_t> missing = {3};
  EXPECT_FALSE(refine_to_ttft(refined, samples, missing));
}

TEST(PartitionSearchTest, FindsNearTheModelOptimumFromAnEvenStart) {
  const ChainModel model = cluster_model({1e-5, 1e10}, 0.0);
  const int64_t tokens = 6000;
  size_t calls = 0;
  std::set<Partition> seen;
  auto measure = [&](const Partition& cuts) -> Result<double> {
    ++calls;
    EXPECT_TRUE(seen.insert(cuts).second) << "measured twice";
    return predict_ttft(model, cuts);
  };
  const Partition even = {0, 2000, 4000, 6000};
  auto found = search_partition(tokens, even, measure, {.min_gain = 0.0});
  ASSERT_TRUE(found) << found.error().to_string();
  EXPECT_EQ(found->measurements, calls);
  auto optimum = fastest_partition(model, tokens);
  ASSERT_TRUE(optimum);
  EXPECT_LT(found->seconds, *predict_ttft(model, even));
  EXPECT_LE(found->seconds, optimum->predicted_seconds * 1.01);
  EXPECT_DOUBLE_EQ(found->seconds, *predict_ttft(model, found->cuts));
}

TEST(PartitionSearchTest, StopsAtItsBudgetAndRefusesABadStart) {
  const ChainModel model = cluster_model({}, 0.0);
  auto measure = [&](const Partition& cuts) { return predict_ttft(model, cuts); };
  auto found = search_partition(3000, {0, 1000, 2000, 3000}, measure, {.max_measurements = 5});
  ASSERT_TRUE(found);
  EXPECT_LE(found->measurements, 5U);
  EXPECT_FALSE(search_partition(3000, {0, 2000, 1000, 3000}, measure));
  EXPECT_FALSE(search_partition(3000, {0, 1000, 2999}, measure));
  // A failed measurement ends the search with its error.
  auto failing = [](const Partition&) -> Result<double> {
    return make_error(ErrorCode::kUnavailable, "worker gone");
  };
  auto failed = search_partition(3000, {0, 1500, 3000}, failing);
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("worker gone"), std::string::npos);
}

}  // namespace
}  // namespace runahead
