// Calibration profiles: round trip through JSON, validation naming the file and the field,
// matching workers to profile entries, and KVR-P interpolation of the searched table.
#include "planner/profile.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

namespace runahead {
namespace {

Profile sample_profile() {
  Profile p;
  p.model.hash = "0123456789abcdef";
  p.model.layers = 32;
  p.model.kv_bytes_per_token = 16384;
  p.model.qkv_fraction = 0.3;
  p.model.name = "llama2-7b";
  p.model.hidden = 4096;
  p.overhead_seconds = 8e-4;
  p.workers.push_back({"w0", "cuda:0", {{1e-5, 2e-9}, 1e-3, 0.3}, 0.01});
  p.workers.push_back({"w1", "cuda:1", {{2e-5, 4e-9}, 2e-3, 0.3, 5e-7}, 0.02});
  p.default_link = {2e-5, 5e10};
  p.links.push_back({"w0", "w1", {1e-4, 1e10}});
  p.searched.push_back({1000, {0.6}, 10.0, 10.5});
  p.searched.push_back({3000, {0.7}, 30.0, 30.2});
  p.searched.push_back({2000, {0.2, 0.5}, 20.0, 21.0});
  return p;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          (name + "-" + std::to_string(::getpid()) + ".json"))
      .string();
}

TEST(ProfileTest, SavesAndLoadsEveryField) {
  const Profile p = sample_profile();
  const std::string path = temp_path("profile-roundtrip");
  ASSERT_TRUE(p.save(path).is_ok());
  auto loaded = Profile::load(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  EXPECT_EQ(loaded->model.hash, p.model.hash);
  EXPECT_EQ(loaded->model.layers, 32);
  EXPECT_EQ(loaded->model.kv_bytes_per_token, 16384);
  EXPECT_EQ(loaded->model.name, "llama2-7b");
  EXPECT_EQ(loaded->model.hidden, 4096);
  EXPECT_DOUBLE_EQ(loaded->overhead_seconds, 8e-4);
  ASSERT_EQ(loaded->workers.size(), 2U);
  EXPECT_EQ(loaded->workers[1].name, "w1");
  EXPECT_EQ(loaded->workers[1].backend, "cuda:1");
  EXPECT_DOUBLE_EQ(loaded->workers[1].cost.slice.per_token, 2e-5);
  EXPECT_DOUBLE_EQ(loaded->workers[1].cost.slice.per_key, 4e-9);
  EXPECT_DOUBLE_EQ(loaded->workers[1].cost.fixed_seconds, 2e-3);
  EXPECT_DOUBLE_EQ(loaded->workers[1].cost.per_prefix_token, 5e-7);
  EXPECT_DOUBLE_EQ(loaded->workers[0].cost.per_prefix_token, 0.0);
  EXPECT_DOUBLE_EQ(loaded->workers[1].fit_error, 0.02);
  EXPECT_DOUBLE_EQ(loaded->default_link.bytes_per_second, 5e10);
  ASSERT_EQ(loaded->links.size(), 1U);
  EXPECT_EQ(loaded->links[0].to, "w1");
  EXPECT_DOUBLE_EQ(loaded->links[0].cost.latency_seconds, 1e-4);
  ASSERT_EQ(loaded->searched.size(), 3U);
  EXPECT_EQ(loaded->searched[2].fractions, (std::vector<double>{0.2, 0.5}));
  EXPECT_DOUBLE_EQ(loaded->searched[0].model_ttft_ms, 10.5);
}

// The profile as JSON with one change applied; the error of parsing it.
std::string error_after(const std::function<void(nlohmann::json&)>& change) {
  nlohmann::json document = nlohmann::json::parse(sample_profile().to_json());
  change(document);
  auto parsed = Profile::parse(document.dump(), "cluster.json");
  return parsed ? std::string("(parsed)") : parsed.error().message;
}

TEST(ProfileTest, ErrorsNameTheFileAndTheField) {
  using nlohmann::json;
  auto expect_error = [](const std::string& message, const std::string& field) {
    EXPECT_NE(message.find("cluster.json"), std::string::npos) << message;
    EXPECT_NE(message.find(field), std::string::npos) << message;
  };
  expect_error(error_after([](json& d) { d["workers"][1]["per_key_seconds"] = -1.0; }),
               "workers[1].per_key_seconds");
  expect_error(error_after([](json& d) { d["workers"][0].erase("per_token_seconds"); }),
               "workers[0].per_token_seconds");
  expect_error(error_after([](json& d) { d["workers"][0]["name"] = 3; }), "workers[0].name");
  expect_error(error_after([](json& d) { d["workers"][1]["per_prefix_token_seconds"] = -1; }),
               "workers[1].per_prefix_token_seconds");
  expect_error(error_after([](json& d) { d["workers"][1]["name"] = "w0"; }), "workers[1].name");
  expect_error(error_after([](json& d) { d["model"].erase("hash"); }), "model.hash");
  expect_error(error_after([](json& d) { d["model"]["layers"] = 0; }), "model.layers");
  expect_error(error_after([](json& d) { d["format"] = "something-else"; }), "format");
  expect_error(error_after([](json& d) { d["version"] = 2; }), "version");
  expect_error(error_after([](json& d) { d["links"]["default"]["bytes_per_second"] = "fast"; }),
               "links.default.bytes_per_second");
  expect_error(error_after([](json& d) { d["links"]["pairs"][0]["to"] = "w0"; }), "links.pairs[0]");
  expect_error(error_after([](json& d) {
                 d["searched"][0]["fractions"] = {0.6, 0.4};
               }),
               "searched[0].fractions");
  expect_error(error_after([](json& d) {
                 d["searched"][2]["fractions"] = {0.5, 0.2};
               }),
               "searched[2].fractions[1]");
  expect_error(error_after([](json& d) { d["searched"][1]["tokens"] = 1000; }),
               "searched[1].tokens");
  expect_error(error_after([](json& d) { d["workers"] = json::array(); }), "workers");
  EXPECT_EQ(error_after([](json&) {}), "(parsed)");

  auto garbage = Profile::parse("{not json", "cluster.json");
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.error().message.find("cluster.json"), std::string::npos);
  auto missing = Profile::load("/nonexistent/cluster.json");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("/nonexistent/cluster.json"), std::string::npos);
}

// A number beyond double's range is an error of its own in nlohmann::json (out_of_range, not
// parse_error); it once escaped Profile::parse and ended the process (found by
// fuzz/profile_fuzzer, kept as fuzz/corpus/profile/regression_number_overflow.json).
TEST(ProfileTest, NumbersBeyondDoubleAreAnErrorNotACrash) {
  const std::string text = R"({"format": "runahead-profile", "version": 1,
    "model": {"hash": "h", "layers": 2, "kv_bytes_per_token": 1e3001},
    "workers": [{"name": "a", "per_token_seconds": 1e-4, "per_key_seconds": 0}]})";
  auto profile = Profile::parse(text, "overflow.json");
  ASSERT_FALSE(profile);
  EXPECT_EQ(profile.error().code, ErrorCode::kCorruptData);
  EXPECT_NE(profile.error().message.find("overflow.json: not valid JSON"), std::string::npos)
      << profile.error().message;
  EXPECT_NE(profile.error().message.find("1e3001"), std::string::npos) << profile.error().message;
}

TEST(ProfileTest, OptionalFieldsTakeTheirDefaults) {
  const std::string minimal = R"({"format": "runahead-profile", "version": 1,
    "model": {"hash": "h", "layers": 2, "kv_bytes_per_token": 64},
    "workers": [{"name": "a", "per_token_seconds": 1e-4, "per_key_seconds": 0}]})";
  auto p = Profile::parse(minimal, "minimal.json");
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_DOUBLE_EQ(p->model.qkv_fraction, 0.25);
  EXPECT_DOUBLE_EQ(p->workers[0].cost.qkv_fraction, 0.25);
  EXPECT_DOUBLE_EQ(p->overhead_seconds, 0.0);
  EXPECT_DOUBLE_EQ(p->default_link.latency_seconds, 0.0);
  EXPECT_TRUE(p->searched.empty());
  EXPECT_FALSE(p->searched_cuts(100, 1));
}

TEST(ProfileTest, ChainModelMatchesWorkersByNameThenBackendThenMeasurement) {
  const Profile p = sample_profile();
  const std::vector<ChainWorker> chain = {
      {"w1", "cuda:1", {}},          // by name
      {"other", "cuda:0", {}},       // by backend: w0's entry
      {"new", "cpu", {3e-4, 5e-8}},  // its own measurement
      {"unknown", "cpu", {}},        // nothing known: the first entry
  };
  const ChainModel model = p.chain_model(chain);
  ASSERT_EQ(model.workers.size(), 4U);
  EXPECT_DOUBLE_EQ(model.workers[0].slice.per_token, 2e-5);
  EXPECT_DOUBLE_EQ(model.workers[1].slice.per_token, 1e-5);
  EXPECT_DOUBLE_EQ(model.workers[2].slice.per_token, 3e-4);
  EXPECT_DOUBLE_EQ(model.workers[2].slice.per_key, 5e-8);
  EXPECT_DOUBLE_EQ(model.workers[2].qkv_fraction, 0.3);
  EXPECT_DOUBLE_EQ(model.workers[3].slice.per_token, 1e-5);
  EXPECT_EQ(model.layers, 32);
  EXPECT_DOUBLE_EQ(model.kv_bytes_per_token, 16384);
  EXPECT_DOUBLE_EQ(model.overhead_seconds, 8e-4);
  // w1 -> other is not listed: the default link.
  EXPECT_DOUBLE_EQ(model.link(0, 1).bytes_per_second, 5e10);

  const std::vector<ChainWorker> listed = {{"w0", "", {}}, {"w1", "", {}}};
  EXPECT_DOUBLE_EQ(p.chain_model(listed).link(0, 1).bytes_per_second, 1e10);
  EXPECT_TRUE(p.chain_model(listed).validate().is_ok());
}

TEST(ProfileTest, SearchedCutsInterpolateBetweenLengthsAndClampOutside) {
  const Profile p = sample_profile();
  // Two workers: 0.6 at 1000 tokens, 0.7 at 3000.
  EXPECT_EQ(p.searched_cuts(1000, 2), (Partition{0, 600, 1000}));
  EXPECT_EQ(p.searched_cuts(2000, 2), (Partition{0, 1300, 2000}));  // 0.65
  EXPECT_EQ(p.searched_cuts(2200, 2), (Partition{0, 1452, 2200}));  // 0.66
  EXPECT_EQ(p.searched_cuts(500, 2), (Partition{0, 300, 500}));     // clamped to 0.6
  EXPECT_EQ(p.searched_cuts(9000, 2), (Partition{0, 6300, 9000}));  // clamped to 0.7
  // Three workers: one length only.
  EXPECT_EQ(p.searched_cuts(100, 3), (Partition{0, 20, 50, 100}));
  EXPECT_EQ(p.searched_cuts(3, 3), (Partition{0, 1, 2, 3}));
  // Every slice keeps a token when the fractions round onto each other.
  Profile crowded = p;
  crowded.searched.push_back({1000, {0.01, 0.02, 0.03}, 1.0, 1.0});
  ASSERT_TRUE(crowded.validate().is_ok());
  EXPECT_EQ(crowded.searched_cuts(10, 4), (Partition{0, 1, 2, 3, 10}));
  EXPECT_FALSE(p.searched_cuts(100, 4));  // nothing searched for four workers
  EXPECT_FALSE(p.searched_cuts(2, 3));    // fewer tokens than workers
}

}  // namespace
}  // namespace runahead
