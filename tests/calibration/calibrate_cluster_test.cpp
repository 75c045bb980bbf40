// `runahead calibrate` against a real coordinator and two CPU worker processes: the profile it
// writes loads, describes the cluster (model hash, layers, the K/V bytes the workers sent, a
// searched partition per length), and a coordinator started with it plans balanced requests
// with the profile's solver and searched requests with its table.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "planner/chain_solver.h"
#include "planner/profile.h"
#include "runahead/coordinator.h"
#include "tests/cluster/worker_process.h"

namespace runahead {
namespace {

using namespace std::chrono_literals;
using testing::WorkerProcess;

constexpr const char* kModel = "random:tiny-llama";

struct Cluster {
  explicit Cluster(CoordinatorConfig config) {
    config.model_path = kModel;
    config.min_tokens_per_worker = 1;
    auto started = Coordinator::start(config);
    EXPECT_TRUE(started) << started.error().to_string();
    if (!started) return;
    coordinator = std::move(started).value();
    for (const char* name : {"w0", "w1"}) {
      workers.push_back(std::make_unique<WorkerProcess>(
          coordinator->address(), kModel, name, std::vector<std::string>{"--transports", "tcp"}));
    }
    const Status joined = coordinator->wait_for_workers(2, 60s);
    EXPECT_TRUE(joined.is_ok()) << joined.to_string();
  }

  // The workers in chain order (the order they joined).
  std::vector<WorkerState> chain() {
    auto status = coordinator->status();
    EXPECT_TRUE(status);
    std::vector<WorkerState> out = status->workers;
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.id < b.id; });
    return out;
  }

  std::unique_ptr<Coordinator> coordinator;
  std::vector<std::unique_ptr<WorkerProcess>> workers;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Tokens each worker took, from the K/V bytes it sent (the last worker sends none).
std::map<uint64_t, int64_t> sent_tokens(const RequestResult& result, double kv_bytes_per_token) {
  std::map<uint64_t, uint64_t> bytes;
  std::map<uint64_t, int> layers;
  for (const LayerTimeline& layer : result.timeline) {
    bytes[layer.worker_id] += layer.bytes_out;
    ++layers[layer.worker_id];
  }
  std::map<uint64_t, int64_t> tokens;
  for (const auto& [worker, total] : bytes) {
    tokens[worker] = std::llround(static_cast<double>(total) / layers[worker] / kv_bytes_per_token);
  }
  return tokens;
}

Result<RequestResult> run(Coordinator& coordinator, int64_t tokens, PartitionOptions partition) {
  RequestOptions options;
  options.max_new_tokens = 1;
  for (int64_t i = 0; i < tokens; ++i)
    options.prompt_tokens.push_back(static_cast<int32_t>(i % 90));
  options.partition = std::move(partition);
  RUNAHEAD_ASSIGN_OR_RETURN(RequestHandle handle, coordinator.submit(options));
  return handle.result_within(60000);
}

TEST(CalibrateClusterTest, WritesAProfileTheCoordinatorPlansWith) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("runahead-calibrate-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string profile_path = (dir / "profile.json").string();
  const std::string log_path = (dir / "calibrate.log").string();

  std::string model_hash;
  {
    Cluster cluster{CoordinatorConfig{}};
    ASSERT_NE(cluster.coordinator, nullptr);
    model_hash = cluster.chain().front().model_hash;
    const std::string command = testing::runahead_binary() + " calibrate --coordinator " +
                                cluster.coordinator->address() + " --out " + profile_path +
                                " --model " + kModel +
                                " --lengths 16,48,96 --repeat 2 --search-lengths 32,64"
                                " --search-budget 10 > " +
                                log_path + " 2>&1";
    const int code = std::system(command.c_str());
    const std::string log = read_file(log_path);
    ASSERT_EQ(code, 0) << log;
    // Per searched length: the model's partition and prediction next to the search's.
    for (const char* expected : {"search 32 tokens", "search 64 tokens", "predicted",
                                 "model partition vs searched", "profile written to"}) {
      EXPECT_NE(log.find(expected), std::string::npos) << expected << " missing in:\n" << log;
    }
  }

  auto profile = Profile::load(profile_path);
  ASSERT_TRUE(profile) << profile.error().to_string();
  EXPECT_EQ(profile->model.hash, model_hash);
  EXPECT_EQ(profile->model.layers, 3);
  // tiny-llama: 2 K/V heads of 12, fp32 on the CPU: K and V of a token are 2 * 24 * 4 bytes.
  EXPECT_DOUBLE_EQ(profile->model.kv_bytes_per_token, 192.0);
  EXPECT_EQ(profile->model.hidden, 36);
  ASSERT_EQ(profile->workers.size(), 2U);
  std::vector<std::string> names = {profile->workers[0].name, profile->workers[1].name};
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"w0", "w1"}));
  for (const ProfileWorker& worker : profile->workers) {
    // The fit is non-negative; on a loaded machine timing noise may put a tiny model's whole
    // cost into any one of its terms, so the test asks for a measured cost, not a given term.
    EXPECT_GT(worker.cost.slice.per_token + worker.cost.slice.per_key + worker.cost.fixed_seconds,
              0.0)
        << worker.name;
    EXPECT_EQ(worker.backend.empty(), false);
  }
  ASSERT_EQ(profile->searched.size(), 2U);
  for (const SearchedPartition& row : profile->searched) {
    EXPECT_EQ(row.workers(), 2U);
    EXPECT_GT(row.measured_ttft_ms, 0.0);
    EXPECT_GT(row.model_ttft_ms, 0.0);
  }

  // A coordinator with the profile.
  CoordinatorConfig config;
  config.profile_path = profile_path;
  Cluster cluster{config};
  ASSERT_NE(cluster.coordinator, nullptr);
  std::vector<ChainWorker> chain;
  for (const WorkerState& w : cluster.chain()) chain.push_back({w.name, w.backend, {}});
  const ChainModel model = profile->chain_model(chain);
  const std::vector<WorkerState> joined = cluster.chain();
  const double kv = profile->model.kv_bytes_per_token;

  // Balanced over both workers: the profile's solver decides the cut.
  {
    auto want = fastest_partition(model, 80);
    ASSERT_TRUE(want);
    PartitionOptions balanced;
    balanced.scheme = PartitionOptions::Scheme::kBalanced;
    balanced.workers = 2;
    auto result = run(*cluster.coordinator, 80, balanced);
    ASSERT_TRUE(result) << result.error().to_string();
    EXPECT_EQ(sent_tokens(*result, kv)[joined[0].id], want->cuts[1]);
  }
  // The default: the solver may use one worker when that predicts a faster first token.
  {
    SolverOptions options;
    options.allow_fewer_workers = true;
    auto want = fastest_partition(model, 80, options);
    ASSERT_TRUE(want);
    auto result = run(*cluster.coordinator, 80, {});
    ASSERT_TRUE(result) << result.error().to_string();
    auto tokens = sent_tokens(*result, kv);
    ASSERT_EQ(tokens.size(), want->chain.size());
    if (want->chain.size() == 2) {
      EXPECT_EQ(tokens[joined[0].id], want->cuts[1]);
    } else {
      EXPECT_EQ(tokens.begin()->first, joined[want->chain[0]].id);
    }
  }
  // Searched: the table's partition, interpolated between 32 and 64 tokens.
  for (int64_t length : {32, 48, 64}) {
    auto want = profile->searched_cuts(length, 2);
    ASSERT_TRUE(want);
    PartitionOptions searched;
    searched.scheme = PartitionOptions::Scheme::kSearched;
    auto result = run(*cluster.coordinator, length, searched);
    ASSERT_TRUE(result) << result.error().to_string();
    EXPECT_EQ(sent_tokens(*result, kv)[joined[0].id], (*want)[1]) << length << " tokens";
  }
  std::filesystem::remove_all(dir);
}

TEST(CalibrateClusterTest, ACoordinatorRefusesAnUnreadableProfile) {
  CoordinatorConfig config;
  config.model_path = kModel;
  config.profile_path = "/nonexistent/profile.json";
  auto started = Coordinator::start(config);
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().message.find("/nonexistent/profile.json"), std::string::npos)
      << started.error().message;
}

}  // namespace
}  // namespace runahead
