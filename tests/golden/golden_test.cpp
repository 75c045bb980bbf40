// The CPU backend against Hugging Face transformers (tools/golden/make_golden.py): each golden
// folder's checkpoint is loaded through load_model(), run as one slice, as three slices and one
// token at a time, and compared with the logits, K/V and greedy continuation that transformers
// computed; a folder with a long reference (long.json, a prompt of about 2000 tokens) is
// compared at the positions it stores too. Every folder under tests/data/golden with a
// golden.json is tested; ExpectedFoldersArePresent keeps one from going missing unnoticed.
//
// Tolerances. Both sides compute in fp32 from identical weights (the bf16/fp16 checkpoints are
// widened exactly), so the differences are rounding-order noise. Each row (one position's
// logits, one position's K or V) is compared on its own scale, max|got - want| / max|want row|;
// the errors seen are at most about 2e-6, and the bound leaves a margin of ten or more while
// still catching a rotary table rounded to fp16 (about 1.6e-4 on the logits):
//   logits at every stored position, K and V of every layer at kv_positions   2e-5
// The argmax (first token) and the greedy continuation must be equal; the generator rejects seeds
// whose top-two logits come closer than 1e-2, so rounding cannot flip them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "model/host_model.h"
#include "model/local_generation.h"
#include "tests/golden/golden_reference.h"
#include "tests/support/random_model.h"

namespace runahead {
namespace {

using testing::GoldenReference;
using ::testing::HasSubstr;
using testing::row_relative_error;

constexpr double kRowTolerance = 2e-5;

std::string scientific(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2e", value);
  return text;
}

// A golden folder's checkpoint on the CPU backend and one of its references.
class GoldenModel {
 public:
  // Loads folder/; ok() tells whether it worked, with the failures already reported.
  explicit GoldenModel(const std::string& folder) : dir_(testing::golden_root() + "/" + folder) {
    auto host = load_model(dir_);
    EXPECT_TRUE(host.is_ok()) << host.error().to_string();
    if (!host.is_ok()) return;
    host_ = std::make_unique<HostModel>(std::move(host).value());
    model_ = testing::load_on_cpu(*host_);
    EXPECT_NE(model_.transformer, nullptr) << dir_;
  }
  bool ok() const { return model_.transformer != nullptr; }
  const std::string& dir() const { return dir_; }
  const ModelConfig& config() const { return host_->config; }
  const Transformer& transformer() const { return *model_.transformer; }
  Backend& backend() const { return *model_.backend; }

  Result<GoldenReference> reference(const std::string& stem) const {
    return testing::load_golden_reference(dir_, stem, config().vocab_size);
  }

  // Runs `prompt` as slices cut at `cuts` (cuts.front() == 0, cuts.back() == its length) into
  // `cache`; returns the logits of each slice's last token.
  std::vector<std::vector<float>> prefill(std::span<const int32_t> prompt,
                                          const std::vector<int64_t>& cuts, KvCache& cache) const {
    int64_t widest = 1;
    for (size_t s = 0; s + 1 < cuts.size(); ++s) widest = std::max(widest, cuts[s + 1] - cuts[s]);
    auto ws = transformer().make_workspace(widest);
    EXPECT_TRUE(ws.is_ok());
    std::vector<std::vector<float>> logits;
    if (!ws.is_ok()) return logits;
    for (size_t s = 0; s + 1 < cuts.size(); ++s) {
      const Status status = transformer().prefill_slice(
          prompt.subspan(static_cast<size_t>(cuts[s]), static_cast<size_t>(cuts[s + 1] - cuts[s])),
          cuts[s], *ws, cache);
      EXPECT_TRUE(status.is_ok()) << status.to_string();
      if (!status.is_ok()) return logits;
      logits.emplace_back();
      const Status head = transformer().last_token_logits(*ws, logits.back());
      EXPECT_TRUE(head.is_ok()) << head.to_string();
    }
    return logits;
  }

  // Compares the cache's K and V with Hugging Face's past_key_values at kv_positions, row by
  // row; returns the worst row error.
  double expect_kv_matches(const GoldenReference& ref, const KvCache& cache) const {
    std::vector<float> row(static_cast<size_t>(config().kv_dim()));
    double worst = 0.0;
    for (int layer = 0; layer < config().n_layers; ++layer) {
      for (const std::string part : {"keys", "values"}) {
        auto want = ref.kv(layer, part);
        EXPECT_TRUE(want.is_ok()) << want.error().to_string();
        if (!want.is_ok()) return worst;
        EXPECT_EQ(want->cols, config().kv_dim()) << ref.path << " layer " << layer << " " << part;
        if (want->cols != config().kv_dim()) return worst;
        const auto* data = static_cast<const float*>(want->data);
        for (size_t i = 0; i < ref.kv_positions.size(); ++i) {
          const int64_t position = ref.kv_positions[i];
          const Tensor got = part == "keys" ? cache.keys(layer, position, position + 1)
                                            : cache.values(layer, position, position + 1);
          EXPECT_TRUE(backend().copy_to_host(got, row.data()).is_ok());
          const double error =
              row_relative_error(row, std::span<const float>(data + i * row.size(), row.size()));
          worst = std::max(worst, error);
          EXPECT_LE(error, kRowTolerance)
              << ref.path << " layer " << layer << " " << part << " at position " << position;
        }
      }
    }
    return worst;
  }

 private:
  std::string dir_;
  std::unique_ptr<HostModel> host_;
  testing::LoadedModel model_;
};

class GoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    model_ = std::make_unique<GoldenModel>(GetParam());
    ASSERT_TRUE(model_->ok());
    auto golden = model_->reference("golden");
    ASSERT_TRUE(golden.is_ok()) << golden.error().to_string();
    golden_ = std::move(golden).value();
    ASSERT_EQ(golden_.logit_positions.size(), golden_.prompt.size())
        << golden_.path << ": a golden reference holds the logits of every prompt position";
  }

  int64_t prompt_size() const { return static_cast<int64_t>(golden_.prompt.size()); }

  void expect_last_logits_match(const std::vector<float>& logits) {
    const double error = row_relative_error(logits, golden_.logits_row(golden_.prompt.size() - 1));
    RecordProperty("last_logits_relative_error", scientific(error));
    EXPECT_LE(error, kRowTolerance);
    EXPECT_EQ(argmax(logits), golden_.first_token);
  }

  void check_slices(const std::vector<int64_t>& cuts) {
    auto cache = KvCache::create(model_->backend(), model_->config(), prompt_size());
    ASSERT_TRUE(cache.is_ok());
    const auto logits = model_->prefill(golden_.prompt, cuts, *cache);
    ASSERT_EQ(logits.size(), cuts.size() - 1);
    expect_last_logits_match(logits.back());
    RecordProperty("worst_kv_relative_error",
                   scientific(model_->expect_kv_matches(golden_, *cache)));
  }

  std::unique_ptr<GoldenModel> model_;
  GoldenReference golden_;
};

TEST_P(GoldenTest, OneShotPrefillMatchesLogitsAndKv) {
  check_slices({0, prompt_size()});
}

TEST_P(GoldenTest, ThreeSlicesMatchLogitsAndKv) {
  check_slices(even_split(prompt_size(), 3));
}

TEST_P(GoldenTest, LogitsMatchAtEveryPositionOneTokenAtATime) {
  std::vector<int64_t> cuts;
  for (int64_t t = 0; t <= prompt_size(); ++t) cuts.push_back(t);
  auto cache = KvCache::create(model_->backend(), model_->config(), prompt_size());
  ASSERT_TRUE(cache.is_ok());
  const auto logits = model_->prefill(golden_.prompt, cuts, *cache);
  ASSERT_EQ(logits.size(), golden_.prompt.size());
  double worst = 0.0;
  for (size_t t = 0; t < logits.size(); ++t) {
    const double error = row_relative_error(logits[t], golden_.logits_row(t));
    worst = std::max(worst, error);
    EXPECT_LE(error, kRowTolerance) << "position " << t;
  }
  RecordProperty("worst_position_relative_error", scientific(worst));
}

// Every stored row on its own scale, each position reached by a slice of many tokens (the
// prompt up to it, cut in two): max|got - want| / max|want row| <= kRowTolerance per position.
TEST_P(GoldenTest, EveryRowWithinBoundOnItsOwnScale) {
  double worst = 0.0;
  for (int64_t t = 0; t < prompt_size(); ++t) {
    auto cache = KvCache::create(model_->backend(), model_->config(), t + 1);
    ASSERT_TRUE(cache.is_ok());
    std::vector<int64_t> cuts = {0, (t + 1) / 2, t + 1};
    if (cuts[1] == 0) cuts.erase(cuts.begin() + 1);
    const auto logits = model_->prefill(std::span(golden_.prompt).first(t + 1), cuts, *cache);
    ASSERT_FALSE(logits.empty());
    const double error = row_relative_error(logits.back(), golden_.logits_row(t));
    worst = std::max(worst, error);
    EXPECT_LE(error, kRowTolerance) << "position " << t;
  }
  RecordProperty("worst_row_relative_error", scientific(worst));
}

TEST_P(GoldenTest, GreedyContinuationMatches) {
  for (int slices : {1, 3}) {
    SCOPED_TRACE("slices: " + std::to_string(slices));
    LocalGenerationOptions options;
    options.slices = slices;
    options.max_new_tokens = static_cast<int>(golden_.continuation.size());
    auto result = generate_local(model_->transformer(), golden_.prompt, options);
    ASSERT_TRUE(result.is_ok()) << result.error().to_string();
    EXPECT_EQ(result->tokens, golden_.continuation);
  }
}

INSTANTIATE_TEST_SUITE_P(HuggingFace, GoldenTest, ::testing::ValuesIn(testing::golden_folders()),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param;
                         });

TEST(GoldenFolders, ExpectedFoldersArePresent) {
  const std::vector<std::string> found = testing::golden_folders();
  for (const char* name : {"llama_mha", "llama_gqa", "falcon_mqa", "llama_gqa64", "llama_gqa96",
                           "falcon_mqa64", "llama_tied", "mistral_window"}) {
    EXPECT_NE(std::find(found.begin(), found.end(), name), found.end())
        << testing::golden_root() << "/" << name
        << " is missing: run tools/golden/make_golden.py (see its header)";
  }
}

// The long reference: one prefill cut right after each stored position (slices of 1 to ~500
// tokens), every stored logits and K/V row within the bound, and the greedy continuation.
TEST(GoldenLongPrompt, CpuMatchesAtStoredPositionsAndContinues) {
  int checked = 0;
  for (const std::string& folder : testing::golden_folders()) {
    if (!std::filesystem::exists(testing::golden_root() + "/" + folder + "/long.json")) continue;
    SCOPED_TRACE(folder);
    GoldenModel model(folder);
    ASSERT_TRUE(model.ok());
    auto loaded = model.reference("long");
    ASSERT_TRUE(loaded.is_ok()) << loaded.error().to_string();
    const GoldenReference& ref = *loaded;
    const auto length = static_cast<int64_t>(ref.prompt.size());
    ASSERT_GE(length, 1000) << ref.path << " is not a long prompt";
    std::vector<int64_t> cuts = {0};
    for (int64_t p : ref.logit_positions) {
      if (p + 1 > cuts.back()) cuts.push_back(p + 1);
    }
    if (cuts.back() != length) cuts.push_back(length);
    auto cache = KvCache::create(model.backend(), model.config(), length);
    ASSERT_TRUE(cache.is_ok());
    const auto logits = model.prefill(ref.prompt, cuts, *cache);
    ASSERT_EQ(logits.size(), cuts.size() - 1);
    double worst = 0.0;
    for (size_t i = 0; i < ref.logit_positions.size(); ++i) {
      const int64_t position = ref.logit_positions[i];
      // The slice ending right after `position`.
      const auto slice = std::find(cuts.begin(), cuts.end(), position + 1) - cuts.begin() - 1;
      const double error =
          row_relative_error(logits[static_cast<size_t>(slice)], ref.logits_row(i));
      worst = std::max(worst, error);
      EXPECT_LE(error, kRowTolerance) << ref.path << " position " << position;
    }
    EXPECT_EQ(argmax(logits.back()), ref.first_token);
    RecordProperty("worst_long_logits_row_error", scientific(worst));
    RecordProperty("worst_long_kv_row_error", scientific(model.expect_kv_matches(ref, *cache)));

    LocalGenerationOptions options;
    options.slices = 3;
    options.max_new_tokens = static_cast<int>(ref.continuation.size());
    auto result = generate_local(model.transformer(), ref.prompt, options);
    ASSERT_TRUE(result.is_ok()) << result.error().to_string();
    EXPECT_EQ(result->tokens, ref.continuation);
    ++checked;
  }
  EXPECT_GE(checked, 1) << "no golden folder holds a long.json";
}

// mistral_window has a sliding window of 48 positions: its golden request (29 + 8 tokens) stays
// inside it and matches transformers (GoldenTest above); longer requests are refused, since
// attention here always covers the whole prefix.
TEST(GoldenSlidingWindow, RequestsPastTheWindowAreRefusedNamingIt) {
  GoldenModel model("mistral_window");
  ASSERT_TRUE(model.ok());
  ASSERT_EQ(model.config().sliding_window, 48);
  auto golden = model.reference("golden");
  ASSERT_TRUE(golden.is_ok()) << golden.error().to_string();
  LocalGenerationOptions options;
  options.max_new_tokens = 48 - static_cast<int>(golden->prompt.size()) + 1;  // 48 positions
  auto inside = generate_local(model.transformer(), golden->prompt, options);
  ASSERT_TRUE(inside.is_ok()) << inside.error().to_string();
  ++options.max_new_tokens;
  auto past = generate_local(model.transformer(), golden->prompt, options);
  ASSERT_FALSE(past.is_ok());
  EXPECT_THAT(past.error().message, HasSubstr("sliding window of 48"));
  EXPECT_THAT(past.error().message, HasSubstr("prompt of 29 tokens"));
  EXPECT_THAT(past.error().message, HasSubstr("MistralForCausalLM"));
}

}  // namespace
}  // namespace runahead
