// Calibration against a simulated cluster: requests "timed" by a known chain model, so the
// procedure's bookkeeping (partitions, medians, fit, search, the profile it writes and what it
// reports) is checked without a cluster (tests/calibration runs the command on a real one).
#include "planner/calibration.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "model/config.h"

namespace runahead {
namespace {

constexpr int kLayers = 4;
constexpr double kKvBytes = 192.0;

ChainModel simulated_cluster(size_t workers) {
  std::vector<WorkerCost> costs;
  for (size_t i = 0; i < workers; ++i) {
    costs.push_back({{2e-5 * (1.0 + 0.2 * static_cast<double>(i)), 1e-8}, 3e-4, 0.25, 0.0});
  }
  return ChainModel::uniform(costs, {1e-5, 1e9}, kLayers, kKvBytes, 2e-4);
}

// Each request as the model predicts it; compute times as each worker spends them.
TimeRequest simulated_timer(const ChainModel& model, int* requests) {
  return [&model, requests](const Partition& cuts) -> Result<TimedRequest> {
    ++*requests;
    TimedRequest timed;
    RUNAHEAD_ASSIGN_OR_RETURN(timed.ttft_seconds, predict_ttft(model, cuts));
    for (size_t i = 0; i + 1 < cuts.size(); ++i) {
      const WorkerCost& cost = model.workers[i];
      double seconds = cost.seconds(cuts[i], cuts[i + 1] - cuts[i]);
      if (i + 2 < cuts.size()) seconds += cost.forwarding_seconds(cuts[i]);
      timed.compute_seconds.push_back(seconds);
    }
    timed.layers = kLayers;
    timed.first_bytes_out_per_layer = kKvBytes * static_cast<double>(cuts[1]);
    return timed;
  };
}

struct Recorder final : CalibrationObserver {
  void timed(int64_t, const Partition& cuts, const TimedRequest& median) override {
    timed_cuts.push_back(cuts);
    EXPECT_GT(median.ttft_seconds, 0.0);
  }
  void fitted(const CalibrationFit& fit) override {
    ++fits;
    requests = fit.requests;
    refined_error = fit.refined_error;
    EXPECT_EQ(fit.compute_costs.size(), fit.profile.workers.size());
    EXPECT_TRUE(fit.profile.searched.empty());
  }
  void searched(const CalibrationSearch& search) override {
    searched_lengths.push_back(search.tokens);
    EXPECT_EQ(search.model_plan.cuts.back(), search.tokens);
    EXPECT_EQ(search.even.back(), search.tokens);
    EXPECT_GT(search.searched.measurements, 0U);
  }

  std::vector<Partition> timed_cuts;
  int fits = 0;
  size_t requests = 0;
  double refined_error = 1.0;
  std::vector<int64_t> searched_lengths;
};

std::vector<ChainWorker> chain_workers(size_t count) {
  std::vector<ChainWorker> chain;
  for (size_t i = 0; i < count; ++i) chain.push_back({"w" + std::to_string(i), "cpu", {}});
  return chain;
}

TEST(CalibrationTest, PartitionsCoverEveryShapeOnce) {
  EXPECT_EQ(calibration_partitions(100, 1), (std::vector<Partition>{{0, 100}}));
  EXPECT_EQ(calibration_partitions(100, 2),
            (std::vector<Partition>{
                {0, 1, 100}, {0, 25, 100}, {0, 50, 100}, {0, 75, 100}, {0, 99, 100}}));
  for (const Partition& cuts : calibration_partitions(1000, 4)) {
    ASSERT_EQ(cuts.size(), 5U);
    EXPECT_EQ(cuts.front(), 0);
    EXPECT_EQ(cuts.back(), 1000);
    for (size_t i = 1; i < cuts.size(); ++i) EXPECT_LT(cuts[i - 1], cuts[i]) << cuts_text(cuts);
  }
  // Two tokens over two workers: every shape is the same partition.
  EXPECT_EQ(calibration_partitions(2, 2), (std::vector<Partition>{{0, 1, 2}}));
}

TEST(CalibrationTest, FitsASimulatedClusterAndSearchesEachLength) {
  const ChainModel cluster = simulated_cluster(2);
  int requests = 0;
  CalibrationOptions options;
  options.lengths = {64, 256, 1024};
  options.search_lengths = {512, 2048};
  options.repeat = 2;
  options.search_budget = 10;
  options.model.hash = "hash";
  options.model.layers = kLayers;
  options.model.qkv_fraction = 0.25;
  Recorder recorder;
  const std::vector<ChainWorker> workers = chain_workers(2);
  auto profile = calibrate(workers, simulated_timer(cluster, &requests), options, &recorder);
  ASSERT_TRUE(profile) << profile.error().to_string();

  EXPECT_EQ(profile->model.hash, "hash");
  EXPECT_EQ(profile->model.layers, kLayers);
  EXPECT_DOUBLE_EQ(profile->model.kv_bytes_per_token, kKvBytes);
  ASSERT_EQ(profile->workers.size(), 2U);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(profile->workers[i].name, workers[i].name);
    EXPECT_EQ(profile->workers[i].backend, "cpu");
  }
  // Exact timings: the first worker's terms come back as simulated, and the whole model
  // predicts the TTFTs it was fitted to.
  EXPECT_NEAR(profile->workers[0].cost.slice.per_token, 2e-5, 2e-7);
  EXPECT_NEAR(profile->workers[0].cost.slice.per_key, 1e-8, 1e-10);
  EXPECT_LT(recorder.refined_error, 0.02);
  EXPECT_TRUE(profile->validate().is_ok());

  // Five partitions per length, each timed `repeat` times, after one warm-up request.
  EXPECT_EQ(recorder.timed_cuts.size(), 15U);
  EXPECT_EQ(recorder.requests, 15U);
  EXPECT_EQ(recorder.fits, 1);
  EXPECT_EQ(recorder.searched_lengths, options.search_lengths);
  ASSERT_EQ(profile->searched.size(), 2U);
  for (size_t i = 0; i < 2; ++i) {
    const SearchedPartition& row = profile->searched[i];
    EXPECT_EQ(row.tokens, options.search_lengths[i]);
    ASSERT_EQ(row.workers(), 2U);
    EXPECT_GT(row.fractions[0], 0.0);
    EXPECT_LT(row.fractions[0], 1.0);
    EXPECT_GT(row.measured_ttft_ms, 0.0);
    // The search starts from the model's partition and keeps it unless a measured one beats it.
    EXPECT_LE(row.measured_ttft_ms, row.model_ttft_ms);
  }
  EXPECT_GT(requests, 1 + 15 * options.repeat);
}

TEST(CalibrationTest, OneWorkerIsFittedButNotSearched) {
  const ChainModel cluster = simulated_cluster(1);
  int requests = 0;
  CalibrationOptions options;
  options.lengths = {64, 256};
  options.search_lengths = {512};
  options.repeat = 1;
  Recorder recorder;
  auto profile =
      calibrate(chain_workers(1), simulated_timer(cluster, &requests), options, &recorder);
  ASSERT_TRUE(profile) << profile.error().to_string();
  EXPECT_EQ(profile->workers.size(), 1U);
  EXPECT_TRUE(profile->searched.empty());
  EXPECT_TRUE(recorder.searched_lengths.empty());
  EXPECT_EQ(requests, 3);  // the warm-up and one per length
}

TEST(CalibrationTest, ALayerCountOtherThanTheModelsIsAnError) {
  const ChainModel cluster = simulated_cluster(2);
  int requests = 0;
  CalibrationOptions options;
  options.lengths = {64};
  options.repeat = 1;
  options.model.layers = kLayers + 1;
  auto profile = calibrate(chain_workers(2), simulated_timer(cluster, &requests), options);
  ASSERT_FALSE(profile);
  EXPECT_NE(profile.error().message.find("the workers ran 4"), std::string::npos)
      << profile.error().message;
}

TEST(CalibrationTest, RefusesLengthsShorterThanTheChain) {
  const ChainModel cluster = simulated_cluster(2);
  int requests = 0;
  CalibrationOptions options;
  options.lengths = {1};
  auto profile = calibrate(chain_workers(2), simulated_timer(cluster, &requests), options);
  ASSERT_FALSE(profile);
  EXPECT_EQ(profile.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(requests, 0);
}

TEST(CalibrationTest, ProfileModelOfAConfig) {
  ModelConfig config;
  config.architecture_name = "LlamaForCausalLM";
  config.n_layers = 3;
  config.hidden = 64;
  config.n_heads = 4;
  config.n_kv_heads = 2;
  config.head_dim = 16;
  config.ffn_hidden = 128;
  config.activation = Activation::kSwiGlu;
  const ProfileModel model = profile_model_of(config);
  EXPECT_EQ(model.name, "LlamaForCausalLM");
  EXPECT_EQ(model.layers, 3);
  EXPECT_EQ(model.hidden, 64);
  EXPECT_EQ(model.kv_dim, config.kv_dim());
  EXPECT_EQ(model.ffn_hidden, 128);
  // Q/K/V: 64 x (64 + 2 x 32); output: 64 x 64; MLP: 3 x 64 x 128.
  const double qkv = 64.0 * 128.0;
  EXPECT_NEAR(model.qkv_fraction, qkv / (qkv + 64.0 * 64.0 + 3.0 * 64.0 * 128.0), 1e-12);
  EXPECT_TRUE(model.hash.empty());
}

}  // namespace
}  // namespace runahead
