// KV-Runahead across a chain of workers in one process: each worker has its own data-plane
// endpoint (loopback), I/O thread and compute thread, and runs its slice with SliceRun. The last
// worker's logits and cache must equal a single-process prefill's.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <deque>
#include <mutex>
#include <thread>

#include "actors/partition.h"
#include "actors/slice_run.h"
#include "net/direct_write_data_plane.h"
#include "net/loopback_data_plane.h"
#include "net/peer_memory.h"
#include "tests/support/deferred_copy_backend.h"
#include "tests/support/numeric.h"
#include "tests/support/random_model.h"

namespace runahead {
namespace {

using namespace std::chrono_literals;
using testing::relative_error;

// A worker's I/O thread: drives its data-plane endpoint and runs posted tasks.
class IoLoop {
 public:
  explicit IoLoop(net::DataPlane& plane) : plane_(plane), thread_([this] { loop(); }) {}
  ~IoLoop() {
    stop_ = true;
    thread_.join();
  }
  void post(std::function<void()> task) {
    std::lock_guard lock(mutex_);
    tasks_.push_back(std::move(task));
  }
  void watch(SliceRun* run) { run_ = run; }

 private:
  void loop() {
    while (!stop_) {
      std::deque<std::function<void()>> tasks;
      {
        std::lock_guard lock(mutex_);
        tasks.swap(tasks_);
      }
      for (auto& task : tasks) task();
      plane_.progress();
      if (SliceRun* run = run_.load()) run->poll_sends();
      std::this_thread::sleep_for(20us);
    }
  }

  net::DataPlane& plane_;
  std::mutex mutex_;
  std::deque<std::function<void()>> tasks_;
  std::atomic<SliceRun*> run_{nullptr};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct ChainResult {
  std::vector<float> logits;
  std::vector<std::vector<float>> cache;  // per layer, of the last worker
  std::vector<uint64_t> bytes_out;        // per worker, all layers
  Status status;
};

// How K/V moves along the chain.
struct ChainMode {
  bool staged = false;  // through host memory where not written directly
  // Workers [0, direct_workers) write K/V straight into their successor's cache (direct writes
  // over host memory); the others send it.
  size_t direct_workers = 0;
  // Every pair direct (direct_workers must cover the chain): each worker writes its own K/V to
  // every later one, nothing is forwarded.
  bool fan_out = false;
  // Host-staged own blocks leave in chunks of this many bytes (0: the default).
  size_t chunk_bytes = 0;
  // Staging memory allocated after the runs are created, on other threads (as a worker does).
  bool defer_staging = false;
};

ChainResult run_chain(const testing::LoadedModel& model, const std::vector<int32_t>& prompt,
                      const Partition& cuts, ChainMode mode) {
  const Transformer& t = *model.transformer;
  const auto workers = cuts.size() - 1;
  auto hub = net::make_loopback_hub();
  std::vector<std::unique_ptr<net::DataPlane>> planes;
  for (size_t i = 0; i < workers; ++i) {
    const std::string name = "worker " + std::to_string(i);
    auto plane = net::LoopbackDataPlane::create(hub, {name});
    EXPECT_TRUE(plane);
    std::unique_ptr<net::DataPlane> endpoint = std::move(plane).value();
    // A worker takes direct writes from its predecessor, or makes them, when either is direct.
    if (i < mode.direct_workers || (i > 0 && i - 1 < mode.direct_workers)) {
      auto direct = net::make_direct_write_data_plane(
          std::move(endpoint), net::make_host_peer_memory(name), {.name = name});
      EXPECT_TRUE(direct);
      endpoint = std::move(direct).value();
    }
    planes.push_back(std::move(endpoint));
  }
  std::vector<std::unique_ptr<IoLoop>> loops(workers);  // started once the receivers are set
  std::vector<std::unique_ptr<SliceRun>> runs(workers);
  const int64_t total = cuts.back();
  for (size_t i = 0; i < workers; ++i) {
    SlicePlan plan;
    plan.request_id = 42;
    plan.begin = cuts[i];
    plan.end = cuts[i + 1];
    plan.cache_tokens = total;
    plan.force_host_staging = mode.staged;
    if (mode.chunk_bytes > 0) plan.staging_chunk_bytes = mode.chunk_bytes;
    if (i + 1 < workers) {
      plan.successor = i + 1;
      EXPECT_TRUE(planes[i]->connect(i + 1, planes[i + 1]->local_address()).is_ok());
      plan.send_direct = planes[i]->direct_path(planes[i + 1]->local_address());
      EXPECT_EQ(plan.send_direct, i < mode.direct_workers);
      plan.hold_sends = plan.send_direct;  // until the successor's cache is known
      for (size_t later = i + 1; later < workers; ++later) {
        plan.later_workers.push_back(later);
        if (mode.fan_out && later > i + 1) {
          EXPECT_TRUE(planes[i]->connect(later, planes[later]->local_address()).is_ok());
        }
      }
    }
    if (i > 0) plan.receive_direct = planes[i]->direct_path(planes[i - 1]->local_address());
    auto run = SliceRun::create(
        t, plan, *planes[i],
        [&loops, i](std::function<void()> task) { loops[i]->post(std::move(task)); },
        {.defer_host_staging = mode.defer_staging});
    EXPECT_TRUE(run) << run.error().to_string();
    runs[i] = std::move(run).value();
    SliceRun* raw = runs[i].get();
    planes[i]->set_block_limits({static_cast<uint32_t>(t.config().n_layers),
                                 raw->cache().bytes_per_token(), uint64_t{1} << 30});
    planes[i]->set_receiver([raw](const net::KvBlockHeader& h) { return raw->resolve(h); },
                            [raw](const net::KvBlockHeader& h, Status s) { raw->on_block(h, s); });
  }
  if (mode.defer_staging) {
    std::vector<std::thread> allocations;
    for (size_t i = 0; i < workers; ++i) {
      const bool staged_here = mode.staged && i >= mode.direct_workers && workers > 1;
      EXPECT_EQ(runs[i]->host_staging_pending(), staged_here) << "worker " << i;
      allocations.emplace_back(
          [&runs, i] { EXPECT_TRUE(runs[i]->allocate_host_staging().is_ok()); });
    }
    for (auto& thread : allocations) thread.join();
  }
  for (size_t i = 0; i < workers; ++i) {
    loops[i] = std::make_unique<IoLoop>(*planes[i]);
    loops[i]->watch(runs[i].get());
  }
  for (size_t i = 0; i + 1 < workers; ++i) {
    if (!runs[i]->plan().send_direct) continue;
    EXPECT_FALSE(runs[i + 1]->kv_target().empty());
    std::vector<std::vector<uint8_t>> later;
    for (size_t k = i + 1; mode.fan_out && k < workers; ++k) later.push_back(runs[k]->kv_target());
    loops[i]->post([&runs, i, later, fan_out = mode.fan_out] {
      runs[i]->release_sends(runs[i + 1]->kv_target(), fan_out, later);
    });
  }

  ChainResult result;
  std::vector<Status> statuses(workers);
  std::vector<std::thread> compute;
  auto last_ws = t.make_workspace(cuts[workers] - cuts[workers - 1]);
  for (size_t i = 0; i < workers; ++i) {
    compute.emplace_back([&, i] {
      const auto deadline = std::chrono::steady_clock::now() + 20s;
      auto ws = t.make_workspace(cuts[i + 1] - cuts[i]);
      Workspace& workspace = i + 1 == workers ? *last_ws : *ws;
      const std::span<const int32_t> slice(prompt.data() + cuts[i],
                                           static_cast<size_t>(cuts[i + 1] - cuts[i]));
      statuses[i] = runs[i]->run(slice, workspace, deadline);
      if (statuses[i].is_ok()) statuses[i] = runs[i]->wait_sends(deadline);
    });
  }
  for (auto& thread : compute) thread.join();
  for (size_t i = 0; i < workers; ++i) {
    if (!statuses[i].is_ok()) result.status = statuses[i];
  }
  if (result.status.is_ok()) {
    result.status = t.last_token_logits(*last_ws, result.logits);
    SliceRun& last = *runs[workers - 1];
    for (int layer = 0; layer < t.config().n_layers; ++layer) {
      const Tensor block = last.cache().block(layer, 0, total);
      std::vector<float> host(static_cast<size_t>(block.elements()));
      EXPECT_TRUE(model.backend->copy_to_host(block, host.data()).is_ok());
      result.cache.push_back(std::move(host));
    }
  }
  for (auto& loop : loops) loop->watch(nullptr);
  loops.clear();
  for (size_t i = 0; i < workers; ++i) {
    uint64_t bytes = 0;
    for (const LayerTiming& layer : runs[i]->timeline()) bytes += layer.bytes_out;
    result.bytes_out.push_back(bytes);
  }
  for (size_t i = 0; i < workers; ++i) runs[i]->finish_transfers();
  return result;
}

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

INSTANTIATE_TEST_SUITE_P(Architectures, ChainTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& param) {
                           return param.param ? "Falcon" : "Llama";
                         });

}  // namespace
}  // namespace runahead
