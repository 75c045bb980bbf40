// The bf16 GPU model against Hugging Face transformers' fp32 references (tests/data/golden,
// written by tools/golden/make_golden.py): every golden checkpoint is loaded through
// load_model() and uploaded to the GPU, its prompt run as one slice and then one token at a time
// (a decode step per position), and every position's logits compared, row by row, with the
// reference's (a folder's long.json/long.safetensors: a long prompt, at the positions listed in
// logit_positions). The greedy continuation must equal the reference's wherever the reference's
// margins leave room for the measured bf16 error.
//
// Bound: the worst row's max |gpu - hf| over that row's max |hf| below 5e-2 (bf16 activations;
// the CPU backend meets 2e-5 on the same files, tests/golden/golden_test.cpp).
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
#include "model/kv_cache.h"
#include "model/local_generation.h"
#include "model/safetensors.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "tests/cuda/twin_tensor.h"
#include "tests/support/numeric.h"

namespace runahead {
namespace {

constexpr double kLogitsBound = 5e-2;

// tests/data/golden: from RUNAHEAD_TEST_DATA when it holds golden/, else from the source tree.
std::string golden_root() {
  if (const char* data = std::getenv("RUNAHEAD_TEST_DATA"); data != nullptr) {
    const std::filesystem::path candidate = std::filesystem::path(data) / "golden";
    if (std::filesystem::is_directory(candidate)) return candidate.string();
  }
  return RUNAHEAD_GOLDEN_DIR;
}

// Every reference set: "folder/golden" (the short prompt, every position) and, where the folder
// has one, "folder/long" (a long prompt, the positions listed in logit_positions).
std::vector<std::string> golden_references() {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(golden_root(), error)) {
    for (const char* stem : {"golden", "long"}) {
      if (std::filesystem::exists(entry.path() / (std::string(stem) + ".json")) &&
          std::filesystem::exists(entry.path() / (std::string(stem) + ".safetensors"))) {
        names.push_back(entry.path().filename().string() + "/" + stem);
      }
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

class CudaGoldenTest : public testing::CudaTest {
 protected:
  void SetUp() override { testing::CudaTest::SetUp(); }
  void check_reference(const std::string& name);
};

void CudaGoldenTest::check_reference(const std::string& name) {
  SCOPED_TRACE(name);
  const std::string dir = golden_root() + "/" + name.substr(0, name.find('/'));
  const std::string stem = dir + "/" + name.substr(name.find('/') + 1);
  auto host = load_model(dir);
  ASSERT_TRUE(host.is_ok()) << host.error().to_string();
  const ModelConfig& c = host->config;
  std::ifstream in(stem + ".json");
  const nlohmann::json summary = nlohmann::json::parse(in, nullptr, false);
  ASSERT_TRUE(summary.is_object()) << stem << ".json";
  const auto prompt = summary.at("prompt").get<std::vector<int32_t>>();
  const auto continuation = summary.at("continuation").get<std::vector<int32_t>>();
  const auto n = static_cast<int64_t>(prompt.size());
  // The reference rows: every prompt position, or those listed in "logit_positions".
  std::vector<int64_t> positions;
  if (summary.contains("logit_positions")) {
    positions = summary.at("logit_positions").get<std::vector<int64_t>>();
  } else {
    for (int64_t t = 0; t < n; ++t) positions.push_back(t);
  }
  auto file = SafetensorsFile::open(stem + ".safetensors");
  ASSERT_TRUE(file.is_ok()) << file.error().to_string();
  auto logits = (*file)->host_tensor("logits");
  ASSERT_TRUE(logits.is_ok()) << logits.error().to_string();
  ASSERT_EQ(logits->dtype, DType::kF32);
  ASSERT_EQ(logits->rows, static_cast<int64_t>(positions.size()));
  ASSERT_EQ(logits->cols, c.vocab_size);
  auto reference_row = [&](size_t i) {
    const auto* data = static_cast<const float*>(logits->data);
    return std::span<const float>(data + static_cast<int64_t>(i) * logits->cols,
                                  static_cast<size_t>(logits->cols));
  };

  auto weights = upload_weights(*host, *gpu_);
  ASSERT_TRUE(weights.is_ok()) << weights.error().to_string();
  const Transformer transformer(*weights, *gpu_);
  const int64_t total = n + static_cast<int64_t>(continuation.size());

  // One slice: the last position's logits.
  double worst = 0.0;
  double worst_abs = 0.0;
  auto compare_row = [&](std::span<const float> got, size_t i, const std::string& where) {
    const std::span<const float> want = reference_row(i);
    const double error = testing::worst_row_error(got, want, c.vocab_size).error;
    double largest = 0.0;
    for (size_t k = 0; k < want.size(); ++k) {
      largest = std::max(largest, std::abs(double{got[k]} - double{want[k]}));
    }
    worst = std::max(worst, error);
    worst_abs = std::max(worst_abs, largest);
    EXPECT_LT(error, kLogitsBound) << where << ", position " << positions[i];
  };
  {
    auto cache = KvCache::create(*gpu_, c, total);
    auto ws = transformer.make_workspace(n);
    ASSERT_TRUE(cache.is_ok() && ws.is_ok());
    ASSERT_TRUE(transformer.prefill_slice(prompt, 0, *ws, *cache).is_ok());
    std::vector<float> got;
    ASSERT_TRUE(transformer.last_token_logits(*ws, got).is_ok());
    if (positions.back() == n - 1) compare_row(got, positions.size() - 1, "one-shot prefill");
  }
  // One token at a time: every listed position through the decode path.
  {
    auto cache = KvCache::create(*gpu_, c, total);
    auto ws = transformer.make_workspace(1);
    ASSERT_TRUE(cache.is_ok() && ws.is_ok());
    std::vector<float> got;
    size_t next = 0;
    for (int64_t t = 0; t < n && next < positions.size(); ++t) {
      ASSERT_TRUE(transformer.prefill_slice(std::span<const int32_t>(&prompt[t], 1), t, *ws, *cache)
                      .is_ok());
      if (positions[next] != t) continue;
      ASSERT_TRUE(transformer.last_token_logits(*ws, got).is_ok());
      compare_row(got, next, "token by token");
      ++next;
    }
  }

  // Greedy continuation on the GPU. Rounding may flip a step only where the reference's top two
  // are closer than twice the largest logit error measured above.
  LocalGenerationOptions options;
  options.max_new_tokens = static_cast<int>(continuation.size());
  auto generated = generate_local(transformer, prompt, options);
  ASSERT_TRUE(generated.is_ok()) << generated.error().to_string();
  const double margin = summary.value("min_top2_margin", 0.0);
  std::printf(
      "[ golden   ] %-14s %lld positions: worst row %.3e, max |diff| %.3e, HF margin "
      "%.3e, continuation %s\n",
      name.c_str(), static_cast<long long>(positions.size()), worst, worst_abs, margin,
      generated->tokens == continuation ? "equal" : "differs");
  if (margin > 2.0 * worst_abs) {
    EXPECT_EQ(generated->tokens, continuation) << "the reference's smallest margin " << margin
                                               << " exceeds twice the logit error " << worst_abs;
  }
}

TEST_F(CudaGoldenTest, EveryGoldenCheckpointMatchesHuggingFace) {
  const std::vector<std::string> references = golden_references();
  ASSERT_FALSE(references.empty()) << "no golden references under " << golden_root();
  for (const std::string& name : references) check_reference(name);
}

}  // namespace
}  // namespace runahead
