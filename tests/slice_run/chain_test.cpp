// KV-Runahead across a chain of workers in one process (tests/slice_run/chain_harness.h): the
// last worker's logits and cache must equal a single-process prefill's.
#include <gtest/gtest.h>

#include <cmath>

#include "planner/partition.h"
#include "tests/slice_run/chain_harness.h"
#include "tests/support/deferred_copy_backend.h"
#include "tests/support/numeric.h"
#include "tests/support/random_model.h"

namespace runahead {
namespace {

using namespace std::chrono_literals;
using testing::relative_error;

using testing::ChainMode;
using testing::ChainResult;
using testing::run_chain;

// One process's prefill of the whole prompt: the last token's logits and the cache.
struct SingleProcess {
  std::vector<float> logits;
  KvCache cache;
};

SingleProcess prefill_in_one_process(const testing::LoadedModel& model,
                                     const std::vector<int32_t>& prompt) {
  const Transformer& t = *model.transformer;
  const auto n = static_cast<int64_t>(prompt.size());
  SingleProcess reference;
  auto ws = t.make_workspace(n);
  auto cache = KvCache::create(*model.backend, t.config(), n);
  EXPECT_TRUE(ws && cache);
  if (!ws || !cache) return reference;
  EXPECT_TRUE(t.prefill_slice(prompt, 0, *ws, *cache).is_ok());
  EXPECT_TRUE(t.last_token_logits(*ws, reference.logits).is_ok());
  reference.cache = std::move(cache).value();
  return reference;
}

// The chain's last worker holds the single process's cache, layer by layer.
void expect_same_cache(const testing::LoadedModel& model, const ChainResult& got,
                       const KvCache& reference, int64_t tokens) {
  for (int layer = 0; layer < reference.n_layers(); ++layer) {
    const Tensor block = reference.block(layer, 0, tokens);
    std::vector<float> want(static_cast<size_t>(block.elements()));
    ASSERT_TRUE(model.backend->copy_to_host(block, want.data()).is_ok());
    EXPECT_LT(relative_error(got.cache[static_cast<size_t>(layer)], want), 1e-5)
        << "layer " << layer;
  }
}

class ChainTest : public ::testing::TestWithParam<bool> {};

TEST_P(ChainTest, ChainOfWorkersEqualsOneProcess) {
  const ModelConfig c = GetParam() ? testing::tiny_falcon_config() : testing::tiny_llama_config();
  const testing::LoadedModel model = testing::load_on_cpu(testing::random_host_model(c, 21));
  ASSERT_NE(model.transformer, nullptr);
  const std::vector<int32_t> prompt = testing::random_tokens(53, c.vocab_size, 8);
  const int64_t n = static_cast<int64_t>(prompt.size());
  const SingleProcess reference = prefill_in_one_process(model, prompt);
  const std::vector<float>& want = reference.logits;
  ASSERT_FALSE(want.empty());

  for (size_t workers = 1; workers <= 4; ++workers) {
    struct Case {
      bool balanced;
      ChainMode mode;
    };
    // Direct writes on every link, and on all but the last with the last one staged: a worker
    // that takes its prefix directly and passes it on through host memory.
    const std::vector<Case> cases = {{false, {}},
                                     {true, {}},
                                     {true, {.staged = true}},
                                     {true, {.staged = false, .direct_workers = workers - 1}},
                                     {false, {.staged = true, .direct_workers = workers - 2}},
                                     {true, {.direct_workers = workers - 1, .fan_out = true}},
                                     {false, {.direct_workers = workers - 1, .fan_out = true}}};
    for (const Case& test_case : cases) {
      if (test_case.mode.direct_workers >= workers) continue;  // wrapped below 0
      SCOPED_TRACE(std::to_string(workers) + (test_case.balanced ? " balanced" : " even") +
                   (test_case.mode.staged ? ", staged through host memory" : "") + ", " +
                   std::to_string(test_case.mode.direct_workers) + " direct writers" +
                   (test_case.mode.fan_out ? ", fan-out" : ""));
      auto cuts = test_case.balanced
                      ? balanced_partition(static_cast<int64_t>(n),
                                           std::vector<SliceCost>(workers, {1e-3, 1e-4}))
                      : even_partition(n, static_cast<int>(workers));
      ASSERT_TRUE(cuts);
      const ChainResult got = run_chain(model, prompt, *cuts, test_case.mode);
      ASSERT_TRUE(got.status.is_ok()) << got.status.to_string();
      EXPECT_LT(relative_error(got.logits, want), 1e-5);
      // What each worker sent: with fan-out its own rows to every later worker, else its
      // whole prefix and own rows to the next one.
      const uint64_t row_bytes =
          2 * static_cast<uint64_t>(c.kv_dim()) * sizeof(float) * static_cast<uint64_t>(c.n_layers);
      for (size_t i = 0; i + 1 < workers; ++i) {
        const auto own = static_cast<uint64_t>((*cuts)[i + 1] - (*cuts)[i]);
        const uint64_t want_bytes = test_case.mode.fan_out
                                        ? own * (workers - 1 - i) * row_bytes
                                        : static_cast<uint64_t>((*cuts)[i + 1]) * row_bytes;
        EXPECT_EQ(got.bytes_out[i], want_bytes) << "worker " << i;
      }
      EXPECT_EQ(argmax(got.logits), argmax(want));
      expect_same_cache(model, got, reference.cache, n);
    }
  }
}

// Host staging as on a GPU: copies to and from host memory complete later, on other threads, in
// chunks of a few tokens; a block read or sent before its copy completed shows up as wrong
// logits or cache rows.
TEST(ChainStagingTest, ChunkedCopiesThatCompleteLater) {
  const ModelConfig c = testing::tiny_llama_config();
  const testing::LoadedModel model =
      testing::load_on(testing::random_host_model(c, 23),
                       testing::make_deferred_copy_backend(make_cpu_backend(), 5));
  ASSERT_NE(model.transformer, nullptr);
  const std::vector<int32_t> prompt = testing::random_tokens(61, c.vocab_size, 9);
  const int64_t n = static_cast<int64_t>(prompt.size());
  const SingleProcess reference = prefill_in_one_process(model, prompt);
  ASSERT_FALSE(reference.logits.empty());

  const size_t token_bytes = reference.cache.bytes_per_token();
  for (size_t workers = 2; workers <= 4; ++workers) {
    auto cuts = even_partition(n, static_cast<int>(workers));
    ASSERT_TRUE(cuts);
    // Chunks of one and of three tokens; the last link alone staged behind direct writes; and
    // staged links after a direct one (a worker moving its direct prefix out through the host).
    const std::vector<ChainMode> modes = {
        {.staged = true, .chunk_bytes = token_bytes},
        {.staged = true, .chunk_bytes = 3 * token_bytes, .defer_staging = true},
        {.staged = true, .direct_workers = workers - 1, .chunk_bytes = 2 * token_bytes},
        {.staged = true, .direct_workers = 1, .chunk_bytes = 3 * token_bytes}};
    for (const ChainMode& mode : modes) {
      if (mode.direct_workers >= workers) continue;
      SCOPED_TRACE(std::to_string(workers) + " workers, " + std::to_string(mode.direct_workers) +
                   " direct writers, chunks of " + std::to_string(mode.chunk_bytes / token_bytes) +
                   " tokens");
      const ChainResult got = run_chain(model, prompt, *cuts, mode);
      ASSERT_TRUE(got.status.is_ok()) << got.status.to_string();
      EXPECT_LT(relative_error(got.logits, reference.logits), 1e-5);
      for (size_t i = 0; i + 1 < workers; ++i) {
        EXPECT_EQ(got.bytes_out[i],
                  static_cast<uint64_t>((*cuts)[i + 1]) * token_bytes * c.n_layers)
            << "worker " << i;
      }
      expect_same_cache(model, got, reference.cache, n);
    }
  }
}

// A request cancelled while host copies are in flight: every run returns the cancellation
// promptly, and the runs are destroyed only after their copies reported (their callbacks refer
// to them), whatever the moment of the cancel.
TEST(ChainStagingTest, CancelledWhileCopiesAreInFlight) {
  const ModelConfig c = testing::tiny_llama_config();
  const testing::LoadedModel model =
      testing::load_on(testing::random_host_model(c, 29),
                       testing::make_deferred_copy_backend(make_cpu_backend(), 11));
  ASSERT_NE(model.transformer, nullptr);
  const std::vector<int32_t> prompt = testing::random_tokens(90, c.vocab_size, 13);
  const auto n = static_cast<int64_t>(prompt.size());
  auto cuts = even_partition(n, 3);
  ASSERT_TRUE(cuts);
  const size_t token_bytes = 2 * static_cast<size_t>(c.kv_dim()) * sizeof(float);
  int cancelled = 0;
  for (const int after_ms : {1, 3, 6, 10, 20}) {
    SCOPED_TRACE("cancelled after " + std::to_string(after_ms) + " ms");
    const auto start = std::chrono::steady_clock::now();
    const ChainResult got = run_chain(model, prompt, *cuts,
                                      {.staged = true,
                                       .chunk_bytes = token_bytes,
                                       .cancel_after = std::chrono::milliseconds(after_ms)});
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_LT(took, std::chrono::seconds(10));  // not the 20 s prefix deadline
    if (!got.status.is_ok()) {
      EXPECT_EQ(got.status.code(), ErrorCode::kCancelled) << got.status.to_string();
      ++cancelled;
    }
  }
  // One-token chunks that complete up to 300 us late keep the runs busy for longer than the
  // earliest cancels.
  EXPECT_GT(cancelled, 0);
}

INSTANTIATE_TEST_SUITE_P(Architectures, ChainTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& param) {
                           return param.param ? "Falcon" : "Llama";
                         });

}  // namespace
}  // namespace runahead
