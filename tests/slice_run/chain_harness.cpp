#include "tests/slice_run/chain_harness.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include "actors/slice_run.h"
#include "core/dtype.h"
#include "net/data/direct_write_data_plane.h"
#include "net/data/loopback_data_plane.h"
#include "net/data/peer_memory.h"
#include "net/data/peer_memory_access.h"

namespace runahead::testing {
namespace {

const net::KvCapability kChainCapability{{0x5e, 0xc7, 0x11, 0x0a, 0x42, 0x99, 0x3b, 0xe0, 0x17,
                                          0x6d, 0xc4, 0x28, 0x81, 0xfa, 0x0c, 0x53}};

using namespace std::chrono_literals;

// A worker's I/O thread: drives its data-plane endpoint and runs posted tasks.
class IoLoop {
 public:
  explicit IoLoop(net::Transport& plane) : plane_(plane), thread_([this] { loop(); }) {}
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

  net::Transport& plane_;
  std::mutex mutex_;
  std::deque<std::function<void()>> tasks_;
  std::atomic<SliceRun*> run_{nullptr};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

std::vector<float> read_floats(Backend& backend, Tensor t) {
  std::vector<float> values(static_cast<size_t>(t.elements()));
  if (t.dtype == DType::kF32) {
    EXPECT_TRUE(backend.copy_to_host(t, values.data()).is_ok());
    return values;
  }
  std::vector<uint16_t> bits(values.size());
  EXPECT_EQ(t.dtype, DType::kBF16);
  EXPECT_TRUE(backend.copy_to_host(t, bits.data()).is_ok());
  for (size_t i = 0; i < bits.size(); ++i) values[i] = bf16_to_f32(bits[i]);
  return values;
}

ChainResult run_chain(const std::vector<const LoadedModel*>& models,
                      const std::vector<int32_t>& prompt, const Partition& cuts, ChainMode mode) {
  const auto workers = cuts.size() - 1;
  if (models.size() != workers) {
    ADD_FAILURE() << models.size() << " models for " << workers << " workers";
    ChainResult refused;
    refused.status = make_error(ErrorCode::kInvalidArgument, "one model per worker");
    return refused;
  }
  const auto transformer = [&](size_t i) -> const Transformer& { return *models[i]->transformer; };
  const Transformer& last_transformer = transformer(workers - 1);
  auto hub = net::make_loopback_hub();
  std::vector<std::unique_ptr<net::Transport>> planes;
  for (size_t i = 0; i < workers; ++i) {
    const std::string name = "worker " + std::to_string(i);
    auto plane = net::LoopbackDataPlane::create(hub, {name});
    EXPECT_TRUE(plane);
    std::unique_ptr<net::Transport> endpoint = std::move(plane).value();
    // A worker takes direct writes from its predecessor, or makes them, when either is direct.
    if (i < mode.direct_workers || (i > 0 && i - 1 < mode.direct_workers)) {
      auto direct = net::make_direct_write_data_plane(
          std::move(endpoint), net::make_host_peer_memory_access(name), {.name = name});
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
    // Worker ids are the chain positions; K/V is taken from the predecessor (with fan-out from
    // every earlier worker), with the request's capability.
    plan.worker_id = i;
    for (size_t sender = mode.fan_out ? 0 : (i > 0 ? i - 1 : 0); sender < i; ++sender) {
      plan.senders.push_back(sender);
    }
    plan.capability = kChainCapability;
    plan.begin = cuts[i];
    plan.end = cuts[i + 1];
    plan.cache_tokens = total;
    // Links not written directly go through host memory in staged mode.
    const KvRoute sent = mode.staged ? KvRoute::kHostStaged : KvRoute::kSend;
    if (mode.chunk_bytes > 0) plan.staging_chunk_bytes = mode.chunk_bytes;
    if (i + 1 < workers) {
      plan.successor = i + 1;
      EXPECT_TRUE(planes[i]->connect(i + 1, planes[i + 1]->local_address()).is_ok());
      const bool send_direct = net::direct_path(*planes[i], planes[i + 1]->local_address());
      EXPECT_EQ(send_direct, i < mode.direct_workers);
      plan.outbound = send_direct ? KvRoute::kDirectWrite : sent;
      plan.hold_sends = send_direct;  // until the successor's cache is known
      for (size_t later = i + 1; later < workers; ++later) {
        plan.later_workers.push_back(later);
        if (mode.fan_out && later > i + 1) {
          EXPECT_TRUE(planes[i]->connect(later, planes[later]->local_address()).is_ok());
        }
      }
    }
    if (i > 0) {
      plan.inbound = net::direct_path(*planes[i], planes[i - 1]->local_address())
                         ? KvRoute::kDirectWrite
                         : sent;
    }
    auto run = SliceRun::create(
        transformer(i), plan, *planes[i],
        [&loops, i](std::function<void()> task) { loops[i]->post(std::move(task)); },
        {.defer_host_staging = mode.defer_staging});
    EXPECT_TRUE(run) << run.error().to_string();
    runs[i] = std::move(run).value();
    SliceRun* raw = runs[i].get();
    planes[i]->set_block_limits({static_cast<uint32_t>(transformer(i).config().n_layers),
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
    if (runs[i]->plan().outbound != KvRoute::kDirectWrite) continue;
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
  auto last_ws = last_transformer.make_workspace(cuts[workers] - cuts[workers - 1]);
  for (size_t i = 0; i < workers; ++i) {
    compute.emplace_back([&, i] {
      const auto deadline = std::chrono::steady_clock::now() + 20s;
      auto ws = transformer(i).make_workspace(cuts[i + 1] - cuts[i]);
      Workspace& workspace = i + 1 == workers ? *last_ws : *ws;
      const std::span<const int32_t> slice(prompt.data() + cuts[i],
                                           static_cast<size_t>(cuts[i + 1] - cuts[i]));
      statuses[i] = runs[i]->run(slice, workspace, deadline);
      if (statuses[i].is_ok()) statuses[i] = runs[i]->wait_sends(deadline);
    });
  }
  if (mode.cancel_after.count() > 0) {
    // As the coordinator's Cancel does: every worker of the request at once.
    std::this_thread::sleep_for(mode.cancel_after);
    for (size_t i = 0; i < workers; ++i) {
      runs[i]->cancel(make_error(ErrorCode::kCancelled, "request 42 cancelled"));
    }
  }
  for (auto& thread : compute) thread.join();
  for (size_t i = 0; i < workers; ++i) {
    if (!statuses[i].is_ok()) result.status = statuses[i];
  }
  if (result.status.is_ok()) {
    result.status = last_transformer.last_token_logits(*last_ws, result.logits);
    SliceRun& last = *runs[workers - 1];
    for (int layer = 0; layer < last_transformer.config().n_layers; ++layer) {
      result.cache.push_back(
          read_floats(*models[workers - 1]->backend, last.cache().block(layer, 0, total)));
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

ChainResult run_chain(const LoadedModel& model, const std::vector<int32_t>& prompt,
                      const Partition& cuts, ChainMode mode) {
  const std::vector<const LoadedModel*> models(cuts.size() - 1, &model);
  return run_chain(models, prompt, cuts, mode);
}

}  // namespace runahead::testing
