// The CPU backend against Hugging Face transformers (tools/golden/make_golden.py): each golden
// checkpoint is loaded through load_model(), run as one slice, as three slices and one token at a
// time, and compared with the logits, K/V and greedy continuation that transformers computed.
//
// Tolerances. Both sides compute in fp32 from identical weights (the bf16/fp16 checkpoints are
// widened exactly), so the differences are rounding-order noise. Every comparison uses the error
// relative to the largest magnitude of the reference tensor, max|got - want| / max|want|; the
// errors seen are at most 1.5e-6, and the bounds leave a margin of ten or more while still
// catching a rotary table rounded to fp16 (about 1.6e-4 on the logits):
//   logits (final token and every position)   2e-5
//   K and V of every layer at kv_positions     2e-5
// The argmax (first token) and the greedy continuation must be equal; the generator rejects seeds
// whose top-two logits come closer than 1e-2, so rounding cannot flip them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/host_model.h"
#include "model/local_generation.h"
#include "model/safetensors.h"
#include "tests/support/random_model.h"

namespace runahead {
namespace {

constexpr double kLogitTolerance = 2e-5;
constexpr double kKvTolerance = 2e-5;

// tests/data/golden: from RUNAHEAD_TEST_DATA when it holds golden/, else from the source tree.
std::string golden_root() {
  if (const char* data = std::getenv("RUNAHEAD_TEST_DATA"); data != nullptr) {
    const std::filesystem::path candidate = std::filesystem::path(data) / "golden";
    if (std::filesystem::is_directory(candidate)) return candidate.string();
  }
  return RUNAHEAD_GOLDEN_DIR;
}

// max|got - want| / max|want|.
double relative_error(std::span<const float> got, std::span<const float> want) {
  double diff = 0.0;
  double scale = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    diff = std::max(diff, std::abs(double{got[i]} - double{want[i]}));
    scale = std::max(scale, std::abs(double{want[i]}));
  }
  return diff / std::max(scale, 1e-30);
}

std::string scientific(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2e", value);
  return text;
}

std::span<const float> row_of(const HostTensor& tensor, int64_t row) {
  const auto* data = static_cast<const float*>(tensor.data);
  return {data + row * tensor.cols, static_cast<size_t>(tensor.cols)};
}

struct Golden {
  nlohmann::json summary;
  std::vector<int32_t> prompt;
  std::vector<int64_t> kv_positions;
  std::vector<int32_t> continuation;
  std::shared_ptr<const SafetensorsFile> file;
  HostTensor logits;  // [prompt, vocab]
};

class GoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = golden_root() + "/" + GetParam();
    ASSERT_TRUE(std::filesystem::is_directory(dir_))
        << dir_ << " is missing: run tools/golden/make_golden.py (see its header)";
    auto host = load_model(dir_);
    ASSERT_TRUE(host.is_ok()) << host.error().to_string();
    host_ = std::make_unique<HostModel>(std::move(host).value());
    model_ = testing::load_on_cpu(*host_);
    ASSERT_NE(model_.transformer, nullptr);

    std::ifstream in(dir_ + "/golden.json");
    golden_.summary = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(golden_.summary.is_object()) << dir_ << "/golden.json is not a JSON object";
    golden_.prompt = golden_.summary.at("prompt").get<std::vector<int32_t>>();
    golden_.kv_positions = golden_.summary.at("kv_positions").get<std::vector<int64_t>>();
    golden_.continuation = golden_.summary.at("continuation").get<std::vector<int32_t>>();
    auto file = SafetensorsFile::open(dir_ + "/golden.safetensors");
    ASSERT_TRUE(file.is_ok()) << file.error().to_string();
    golden_.file = *file;
    auto logits = golden_.file->host_tensor("logits");
    ASSERT_TRUE(logits.is_ok()) << logits.error().to_string();
    golden_.logits = *logits;
    ASSERT_EQ(golden_.logits.dtype, DType::kF32);
    ASSERT_EQ(golden_.logits.rows, static_cast<int64_t>(golden_.prompt.size()));
    ASSERT_EQ(golden_.logits.cols, config().vocab_size);
  }

  const ModelConfig& config() const { return host_->config; }
  const Transformer& transformer() const { return *model_.transformer; }
  int64_t prompt_size() const { return static_cast<int64_t>(golden_.prompt.size()); }

  // Runs the prompt as slices cut at `cuts`; returns the last token's logits.
  std::vector<float> prefill(const std::vector<int64_t>& cuts, KvCache& cache) {
    auto ws = transformer().make_workspace(prompt_size());
    EXPECT_TRUE(ws.is_ok());
    if (!ws.is_ok()) return {};
    for (size_t s = 0; s + 1 < cuts.size(); ++s) {
      const std::span<const int32_t> slice(golden_.prompt.data() + cuts[s],
                                           static_cast<size_t>(cuts[s + 1] - cuts[s]));
      const Status status = transformer().prefill_slice(slice, cuts[s], *ws, cache);
      EXPECT_TRUE(status.is_ok()) << status.to_string();
    }
    std::vector<float> logits;
    const Status status = transformer().last_token_logits(*ws, logits);
    EXPECT_TRUE(status.is_ok()) << status.to_string();
    return logits;
  }

  // Compares the cache's K and V with Hugging Face's past_key_values at kv_positions.
  void expect_kv_matches(const KvCache& cache) {
    std::vector<float> row(static_cast<size_t>(config().kv_dim()));
    double worst = 0.0;
    for (int layer = 0; layer < config().n_layers; ++layer) {
      for (const char* part : {"keys", "values"}) {
        const std::string name = "layers." + std::to_string(layer) + "." + part;
        auto want = golden_.file->host_tensor(name);
        ASSERT_TRUE(want.is_ok()) << want.error().to_string();
        ASSERT_EQ(want->cols, config().kv_dim()) << name;
        ASSERT_EQ(want->rows, static_cast<int64_t>(golden_.kv_positions.size())) << name;
        for (size_t i = 0; i < golden_.kv_positions.size(); ++i) {
          const int64_t position = golden_.kv_positions[i];
          const Tensor got = std::string(part) == "keys"
                                 ? cache.keys(layer, position, position + 1)
                                 : cache.values(layer, position, position + 1);
          ASSERT_TRUE(model_.backend->copy_to_host(got, row.data()).is_ok());
          const double error = relative_error(row, row_of(*want, static_cast<int64_t>(i)));
          worst = std::max(worst, error);
          EXPECT_LE(error, kKvTolerance) << name << " at position " << position;
        }
      }
    }
    RecordProperty("worst_kv_relative_error", scientific(worst));
  }

  void expect_last_logits_match(const std::vector<float>& logits) {
    ASSERT_EQ(logits.size(), static_cast<size_t>(config().vocab_size));
    const double error = relative_error(logits, row_of(golden_.logits, prompt_size() - 1));
    RecordProperty("last_logits_relative_error", scientific(error));
    EXPECT_LE(error, kLogitTolerance);
    EXPECT_EQ(argmax(logits), golden_.summary.at("first_token").get<int32_t>());
  }

  std::string dir_;
  std::unique_ptr<HostModel> host_;
  testing::LoadedModel model_;
  Golden golden_;
};

TEST_P(GoldenTest, OneShotPrefillMatchesLogitsAndKv) {
  auto cache = KvCache::create(*model_.backend, config(), prompt_size());
  ASSERT_TRUE(cache.is_ok());
  expect_last_logits_match(prefill({0, prompt_size()}, *cache));
  expect_kv_matches(*cache);
}

TEST_P(GoldenTest, ThreeSlicesMatchLogitsAndKv) {
  auto cache = KvCache::create(*model_.backend, config(), prompt_size());
  ASSERT_TRUE(cache.is_ok());
  expect_last_logits_match(prefill(even_split(prompt_size(), 3), *cache));
  expect_kv_matches(*cache);
}

TEST_P(GoldenTest, LogitsMatchAtEveryPosition) {
  auto cache = KvCache::create(*model_.backend, config(), prompt_size());
  ASSERT_TRUE(cache.is_ok());
  auto ws = transformer().make_workspace(1);
  ASSERT_TRUE(ws.is_ok());
  std::vector<float> logits;
  double worst = 0.0;
  for (int64_t t = 0; t < prompt_size(); ++t) {
    ASSERT_TRUE(transformer()
                    .prefill_slice(std::span<const int32_t>(&golden_.prompt[t], 1), t, *ws, *cache)
                    .is_ok());
    ASSERT_TRUE(transformer().last_token_logits(*ws, logits).is_ok());
    const double error = relative_error(logits, row_of(golden_.logits, t));
    worst = std::max(worst, error);
    EXPECT_LE(error, kLogitTolerance) << "position " << t;
  }
  RecordProperty("worst_position_relative_error", scientific(worst));
}

TEST_P(GoldenTest, GreedyContinuationMatches) {
  for (int slices : {1, 3}) {
    SCOPED_TRACE("slices: " + std::to_string(slices));
    LocalGenerationOptions options;
    options.slices = slices;
    options.max_new_tokens = static_cast<int>(golden_.continuation.size());
    auto result = generate_local(transformer(), golden_.prompt, options);
    ASSERT_TRUE(result.is_ok()) << result.error().to_string();
    EXPECT_EQ(result->tokens, golden_.continuation);
  }
}

INSTANTIATE_TEST_SUITE_P(HuggingFace, GoldenTest,
                         ::testing::Values("llama_mha", "llama_gqa", "falcon_mqa"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param;
                         });

}  // namespace
}  // namespace runahead
