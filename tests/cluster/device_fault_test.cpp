// A device that fails mid-request (an injected sticky fault, as a GPU's after a kernel fault):
// the backend decorator itself, then a cluster of worker processes where one worker's device
// fails during a prefill. That request fails naming the fault, the worker leaves the cluster,
// and the next request runs on the others with the single-process result.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "kernels/backend.h"
#include "kernels/fault_injecting_backend.h"
#include "model/local_generation.h"
#include "model/random_model.h"
#include "runahead/coordinator.h"
#include "tests/cluster/worker_process.h"
#include "tests/support/random_model.h"

namespace runahead {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using testing::WorkerProcess;

// tiny-llama runs four matrix products per layer (QKV, output, gate/up, down) over 3 layers.
constexpr int64_t kFaultAfter = 5;  // the second layer's output projection faults
constexpr const char* kFaultText = "injected device fault after 5 matrix products";

HostModel tiny_llama() {
  auto host = load_random_model("random:tiny-llama");
  EXPECT_TRUE(host) << host.error().to_string();
  return host ? std::move(host).value() : HostModel{};
}

Result<LocalGenerationResult> generate(const testing::LoadedModel& model,
                                       const std::vector<int32_t>& prompt) {
  LocalGenerationOptions options;
  options.max_new_tokens = 6;
  options.stop_token = model.transformer->config().eos_token;  // as the workers stop
  return generate_local(*model.transformer, prompt, options);
}

TEST(FaultInjectingBackend, ForwardsEverythingUntilTheFault) {
  const HostModel host = tiny_llama();
  const std::vector<int32_t> prompt = testing::random_tokens(20, 97, 1);
  const auto plain = testing::load_on_cpu(host);
  auto want = generate(plain, prompt);
  ASSERT_TRUE(want) << want.error().to_string();

  // Far more products than the run takes: the wrapped backend gives the same tokens and logits.
  auto wrapped = FaultInjectingBackend::wrap(make_cpu_backend(), 1000000);
  wrapped->start_counting();
  FaultInjectingBackend* backend = wrapped.get();
  const auto model = testing::load_on(host, std::move(wrapped));
  auto got = generate(model, prompt);
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(got->tokens, want->tokens);
  EXPECT_EQ(got->first_logits, want->first_logits);
  EXPECT_FALSE(backend->failed());
}

TEST(FaultInjectingBackend, FailsAfterTheCountedProductsAndNeverRecovers) {
  const HostModel host = tiny_llama();
  auto wrapped = FaultInjectingBackend::wrap(make_cpu_backend(), kFaultAfter);
  FaultInjectingBackend* backend = wrapped.get();
  const auto model = testing::load_on(host, std::move(wrapped));
  const std::vector<int32_t> prompt = testing::random_tokens(20, 97, 2);

  // Not counting yet (start-up): a whole generation runs.
  auto before = generate(model, prompt);
  ASSERT_TRUE(before) << before.error().to_string();
  ASSERT_FALSE(backend->failed());

  backend->start_counting();
  auto failed = generate(model, prompt);
  ASSERT_FALSE(failed) << "the generation ran past the injected fault";
  EXPECT_EQ(failed.error().code, ErrorCode::kDevice);
  EXPECT_THAT(failed.error().message, HasSubstr(kFaultText));
  EXPECT_THAT(failed.error().message, HasSubstr("cpu"));
  EXPECT_TRUE(backend->failed());

  // Sticky: every later check reports the same fault, whatever runs in between (here the
  // next generation's cache allocation).
  auto again = generate(model, prompt);
  ASSERT_FALSE(again);
  EXPECT_THAT(again.error().message, HasSubstr(kFaultText));
  const Status synced = backend->synchronize();
  EXPECT_EQ(synced.code(), ErrorCode::kDevice);
  auto memory = backend->allocate(64);
  EXPECT_FALSE(memory);
  std::vector<float> host_row(4, 1.0f);
  auto scratch = make_cpu_backend()->allocate_host(host_row.size() * sizeof(float));
  ASSERT_TRUE(scratch);
  const Tensor row = Tensor::matrix(scratch->data(), DType::kF32, 1, 4);
  EXPECT_EQ(backend->copy_from_host(host_row.data(), row).code(), ErrorCode::kDevice);
  EXPECT_EQ(backend->copy_to_host(row, host_row.data()).code(), ErrorCode::kDevice);
  EXPECT_FALSE(backend->argmax(row));
  int completions = 0;
  Status copied;
  ASSERT_TRUE(backend
                  ->copy_to_host_async(row, host_row.data(),
                                       [&](Status status) {
                                         ++completions;
                                         copied = std::move(status);
                                       })
                  .is_ok());
  EXPECT_EQ(completions, 1);
  EXPECT_EQ(copied.code(), ErrorCode::kDevice);
  ASSERT_TRUE(backend
                  ->copy_from_host_async(host_row.data(), row,
                                         [&](Status status) {
                                           ++completions;
                                           copied = std::move(status);
                                         })
                  .is_ok());
  EXPECT_EQ(completions, 2);
  EXPECT_THAT(copied.message(), HasSubstr(kFaultText));
}

// Where the failing worker sits in the chain (workers are chained in the order they joined).
enum class FaultyPosition { kMiddle, kLast };
void PrintTo(FaultyPosition position, std::ostream* out) {
  *out << (position == FaultyPosition::kMiddle ? "middle" : "last");
}

class DeviceFaultInCluster : public ::testing::TestWithParam<FaultyPosition> {};

TEST_P(DeviceFaultInCluster, RequestFailsWorkerLeavesOthersGoOn) {
  const HostModel host = tiny_llama();
  const auto reference = testing::load_on_cpu(host);

  CoordinatorConfig config;
  config.model_path = "random:tiny-llama";
  config.min_tokens_per_worker = 1;
  auto started = Coordinator::start(config);
  ASSERT_TRUE(started) << started.error().to_string();
  std::unique_ptr<Coordinator> coordinator = std::move(started).value();

  // Joined one by one, so that the chain is w0, faulty, w2 or w0, w1, faulty.
  const std::vector<std::string> common = {"--transports", "tcp"};
  std::vector<std::string> faulty_flags = common;
  faulty_flags.insert(faulty_flags.end(),
                      {"--inject-device-fault-after-matmuls", std::to_string(kFaultAfter)});
  const int faulty_index = GetParam() == FaultyPosition::kMiddle ? 1 : 2;
  const std::string faulty_name = "faulty";
  std::vector<std::unique_ptr<WorkerProcess>> workers;
  for (int i = 0; i < 3; ++i) {
    const bool faulty = i == faulty_index;
    workers.push_back(std::make_unique<WorkerProcess>(
        coordinator->address(), "random:tiny-llama", faulty ? faulty_name : "w" + std::to_string(i),
        faulty ? faulty_flags : common));
    const Status joined = coordinator->wait_for_workers(static_cast<size_t>(i + 1), 30s);
    ASSERT_TRUE(joined.is_ok()) << joined.to_string();
  }
  auto status = coordinator->status();
  ASSERT_TRUE(status);
  ASSERT_EQ(status->workers.size(), 3u);
  uint64_t faulty_id = 0;
  for (const WorkerState& worker : status->workers) {
    if (worker.name == faulty_name) faulty_id = worker.id;
  }
  ASSERT_NE(faulty_id, 0u);

  // The faulty worker's device fails in the second layer of its prefill.
  RequestOptions options;
  options.prompt_tokens = testing::random_tokens(40, 97, 3);
  options.max_new_tokens = 6;
  auto handle = coordinator->submit(options);
  ASSERT_TRUE(handle) << handle.error().to_string();
  auto failed = handle->result_within(20000);
  ASSERT_FALSE(failed) << "the request finished although a worker's device failed";
  EXPECT_EQ(failed.error().code, ErrorCode::kDevice) << failed.error().to_string();
  EXPECT_THAT(failed.error().message, HasSubstr(kFaultText));
  // Among workers on like devices ("cuda:0" on every host), the fault must say whose it was.
  EXPECT_THAT(failed.error().message, HasSubstr("worker " + faulty_name));
  EXPECT_THAT(failed.error().message, HasSubstr("request " + std::to_string(handle->id())));

  // The worker leaves: the coordinator drops it and its process exits.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  size_t remaining = 3;
  while (std::chrono::steady_clock::now() < deadline) {
    status = coordinator->status();
    ASSERT_TRUE(status);
    remaining = status->workers.size();
    if (remaining == 2 && !workers[static_cast<size_t>(faulty_index)]->running()) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(remaining, 2u) << "the worker whose device failed is still in the cluster";
  for (const WorkerState& worker : status->workers) EXPECT_NE(worker.name, faulty_name);
  EXPECT_FALSE(workers[static_cast<size_t>(faulty_index)]->running());

  // The next request runs on the two others and gives the single-process tokens.
  options.prompt_tokens = testing::random_tokens(40, 97, 4);
  auto want = generate(reference, options.prompt_tokens);
  ASSERT_TRUE(want) << want.error().to_string();
  auto after = coordinator->submit(options);
  ASSERT_TRUE(after) << after.error().to_string();
  auto result = after->result_within(20000);
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_EQ(result->tokens, want->tokens);
  std::map<uint64_t, int> layers_per_worker;
  for (const LayerTimeline& layer : result->timeline) ++layers_per_worker[layer.worker_id];
  EXPECT_EQ(layers_per_worker.size(), 2u);
  EXPECT_EQ(layers_per_worker.count(faulty_id), 0u);
}

INSTANTIATE_TEST_SUITE_P(Positions, DeviceFaultInCluster,
                         ::testing::Values(FaultyPosition::kMiddle, FaultyPosition::kLast),
                         [](const ::testing::TestParamInfo<FaultyPosition>& param) {
                           return param.param == FaultyPosition::kMiddle ? std::string("Middle")
                                                                         : std::string("Last");
                         });

}  // namespace
}  // namespace runahead
