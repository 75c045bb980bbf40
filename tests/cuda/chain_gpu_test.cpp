// KV-Runahead across workers on the GPU, in one process (tests/slice_run/chain_harness.h): each
// worker has a CUDA backend of its own (stream, cuBLASLt handle, weights) and a loopback data
// plane, which cannot reach GPU memory, so K/V moves through page-locked host memory with the
// backend's asynchronous copies, in chunks of a few tokens. The last worker's logits and cache
// must match one GPU's prefill of the whole prompt.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "model/kv_cache.h"
#include "planner/partition.h"
#include "tests/slice_run/chain_harness.h"
#include "tests/support/numeric.h"
#include "tests/support/random_model.h"

namespace runahead {
namespace {

using testing::relative_error;

// The same model on a backend of its own.
testing::LoadedModel load_on_gpu(const HostModel& host) {
  auto gpu = CudaBackend::create(0);
  if (!gpu) {
    ADD_FAILURE() << gpu.error().to_string();
    return {};
  }
  return testing::load_on(host, std::move(gpu).value());
}

TEST(CudaChainTest, HostStagedChunksMatchOneGpu) {
  if (auto probe = CudaBackend::create(0); !probe) {
    GTEST_SKIP() << "no CUDA device: " << probe.error().message;
  }
  const ModelConfig c = testing::tiny_llama_config();
  const HostModel host = testing::random_host_model(c, 31);
  const std::vector<int32_t> prompt = testing::random_tokens(200, c.vocab_size, 5);
  const auto n = static_cast<int64_t>(prompt.size());

  const testing::LoadedModel one_gpu = load_on_gpu(host);
  ASSERT_NE(one_gpu.transformer, nullptr);
  auto ws = one_gpu.transformer->make_workspace(n);
  ASSERT_TRUE(ws);
  auto cache = KvCache::create(*one_gpu.backend, c, n);
  ASSERT_TRUE(cache);
  ASSERT_TRUE(one_gpu.transformer->prefill_slice(prompt, 0, *ws, *cache).is_ok());
  std::vector<float> want;
  ASSERT_TRUE(one_gpu.transformer->last_token_logits(*ws, want).is_ok());
  const size_t token_bytes = cache->bytes_per_token();

  std::vector<testing::LoadedModel> workers_models;
  for (int i = 0; i < 4; ++i) {
    workers_models.push_back(load_on_gpu(host));
    ASSERT_NE(workers_models.back().transformer, nullptr);
  }
  for (size_t workers = 2; workers <= 4; ++workers) {
    std::vector<const testing::LoadedModel*> models;
    for (size_t i = 0; i < workers; ++i) models.push_back(&workers_models[i]);
    auto cuts = even_partition(n, static_cast<int>(workers));
    ASSERT_TRUE(cuts);
    for (const size_t chunk_tokens : {size_t{1}, size_t{7}, size_t{0}}) {
      SCOPED_TRACE(std::to_string(workers) + " workers, chunks of " +
                   (chunk_tokens == 0 ? std::string("the default size")
                                      : std::to_string(chunk_tokens) + " tokens"));
      const testing::ChainResult got = testing::run_chain(
          models, prompt, *cuts, {.staged = true, .chunk_bytes = chunk_tokens * token_bytes});
      ASSERT_TRUE(got.status.is_ok()) << got.status.to_string();
      // The same kernels on the same shapes of rows: equal up to bf16 rounding at most.
      EXPECT_LT(relative_error(got.logits, want), 1e-3);
      EXPECT_EQ(argmax(got.logits), argmax(want));
      for (size_t i = 0; i + 1 < workers; ++i) {
        EXPECT_EQ(got.bytes_out[i], static_cast<uint64_t>((*cuts)[i + 1]) * token_bytes *
                                        static_cast<uint64_t>(c.n_layers))
            << "worker " << i;
      }
      for (int layer = 0; layer < c.n_layers; ++layer) {
        const std::vector<float> reference =
            testing::read_floats(*one_gpu.backend, cache->block(layer, 0, n));
        EXPECT_LT(relative_error(got.cache[static_cast<size_t>(layer)], reference), 1e-3)
            << "layer " << layer;
      }
    }
  }
}

}  // namespace
}  // namespace runahead
