// Admission at the coordinator, against scripted workers: a request that cannot run is refused
// at once, naming the request and the limit, before any worker sees an AssignSlice; a request
// with no worker fails after the no-worker timeout; a request's own deadline cancels it on its
// workers and frees them; one client cannot hold more than its share of requests.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "runahead/client.h"
#include "runahead/coordinator.h"
#include "tests/cluster/scripted_worker.h"

namespace runahead {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using testing::ScriptedWorker;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kContext = 16;
constexpr uint32_t kVocab = 100;

WorkerInfo small_model() {
  WorkerInfo info;
  info.model_hash = "cafe";
  info.max_positions = kContext;
  info.vocab_size = kVocab;
  return info;
}

// A scripted worker never sends heartbeats: keep it registered for the test's length.
CoordinatorConfig patient_config() {
  CoordinatorConfig config;
  config.heartbeat_timeout = 120s;
  config.adopt_first_model = true;  // the scripted workers' made-up model
  return config;
}

std::vector<int32_t> prompt_of(size_t length) {
  std::vector<int32_t> prompt(length);
  for (size_t i = 0; i < length; ++i) prompt[i] = static_cast<int32_t>(1 + i % (kVocab - 1));
  return prompt;
}

RequestOptions request_of(size_t length, int max_new_tokens = 1) {
  RequestOptions options;
  options.prompt_tokens = prompt_of(length);
  options.max_new_tokens = max_new_tokens;
  return options;
}

// The request's outcome: refused at submit or failed at once after it.
Status outcome(Result<RequestHandle> handle) {
  if (!handle) return handle.error();
  auto result = handle->result_within(5000);
  if (!result) return result.error();
  return Status::ok();
}

class Admission : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = Coordinator::start(patient_config());
    ASSERT_TRUE(started) << started.error().to_string();
    coordinator_ = std::move(started).value();
    ASSERT_TRUE(worker_.join(coordinator_->address(), small_model()).is_ok());
  }

  // Refused with `code` and every needle in the message, and no AssignSlice sent.
  void expect_refused(RequestOptions options, ErrorCode code,
                      const std::vector<std::string>& needles) {
    const auto start = Clock::now();
    const Status refused = outcome(coordinator_->submit(std::move(options)));
    ASSERT_FALSE(refused.is_ok());
    EXPECT_LT(Clock::now() - start, 2s);
    EXPECT_EQ(refused.code(), code) << refused.to_string();
    EXPECT_THAT(refused.message(), HasSubstr("request "));
    for (const std::string& needle : needles) {
      EXPECT_THAT(refused.message(), HasSubstr(needle));
    }
    EXPECT_FALSE(worker_.next<net::AssignSlice>(200ms)) << "a worker saw the refused request";
  }

  std::unique_ptr<Coordinator> coordinator_;
  ScriptedWorker worker_;
};

TEST_F(Admission, PromptLongerThanTheContextIsRefusedBeforeDispatch) {
  expect_refused(request_of(kContext + 1), ErrorCode::kOutOfRange, {"17", "16"});
  // The context itself fits (one token: the last is never fed back).
  ASSERT_TRUE(coordinator_->submit(request_of(kContext, 4)));
  auto assign = worker_.next<net::AssignSlice>();
  ASSERT_TRUE(assign);
  EXPECT_EQ(assign->total_prompt_tokens, kContext);
  EXPECT_EQ(assign->max_new_tokens, 1u);
}

TEST_F(Admission, MaxNewTokensIsLoweredToWhatTheContextHolds) {
  ASSERT_TRUE(coordinator_->submit(request_of(10, 100)));
  auto assign = worker_.next<net::AssignSlice>();
  ASSERT_TRUE(assign);
  // 10 prompt positions + 7 generated tokens, of which the last is never fed back: 16.
  EXPECT_EQ(assign->max_new_tokens, 7u);
}

TEST_F(Admission, TokenOutsideTheVocabularyIsRefusedAtOnce) {
  RequestOptions above = request_of(5);
  above.prompt_tokens[3] = static_cast<int32_t>(kVocab);
  expect_refused(above, ErrorCode::kOutOfRange, {"token 3", "100"});
  RequestOptions negative = request_of(5);
  negative.prompt_tokens[0] = -1;
  expect_refused(negative, ErrorCode::kOutOfRange, {"token 0", "-1"});
}

TEST_F(Admission, EmptyPromptAndBadSamplingAreRefusedAtOnce) {
  expect_refused(request_of(0), ErrorCode::kInvalidArgument, {"empty prompt"});
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  struct Case {
    Sampling sampling;
    std::string needle;
  };
  for (const Case& bad : std::vector<Case>{{{.temperature = -0.5f}, "temperature"},
                                           {{.temperature = nan}, "temperature"},
                                           {{.temperature = inf}, "temperature"},
                                           {{.top_p = 0.0f}, "top-p"},
                                           {{.top_p = 1.5f}, "top-p"},
                                           {{.top_p = nan}, "top-p"},
                                           {{.repetition_penalty = 0.0f}, "repetition penalty"},
                                           {{.repetition_penalty = inf}, "repetition penalty"}}) {
    SCOPED_TRACE(bad.needle);
    RequestOptions options = request_of(4);
    options.sampling = bad.sampling;
    expect_refused(options, ErrorCode::kInvalidArgument, {bad.needle});
  }
  RequestOptions too_many_logprobs = request_of(4);
  too_many_logprobs.top_logprobs = kVocab + 1;
  expect_refused(too_many_logprobs, ErrorCode::kInvalidArgument, {"101", "100"});
}

TEST_F(Admission, RemoteClientIsRefusedAtOnceToo) {
  auto client = Client::connect(coordinator_->address());
  ASSERT_TRUE(client) << client.error().to_string();
  RequestOptions options = request_of(kContext + 4);
  const auto start = Clock::now();
  const Status refused = outcome((*client)->submit(options));
  EXPECT_LT(Clock::now() - start, 2s);
  EXPECT_EQ(refused.code(), ErrorCode::kOutOfRange) << refused.to_string();
  EXPECT_THAT(refused.message(), HasSubstr("20"));
  EXPECT_FALSE(worker_.next<net::AssignSlice>(200ms));
}

TEST(AdmissionQueued, RequestQueuedBeforeAnyWorkerIsCheckedWhenOneJoins) {
  auto coordinator = Coordinator::start(patient_config());
  ASSERT_TRUE(coordinator);
  auto handle = (*coordinator)->submit(request_of(kContext + 1));
  ASSERT_TRUE(handle);  // nothing says yet what the model holds
  ScriptedWorker worker;
  ASSERT_TRUE(worker.join((*coordinator)->address(), small_model()).is_ok());
  auto result = handle->result_within(5000);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kOutOfRange) << result.error().to_string();
  EXPECT_FALSE(worker.next<net::AssignSlice>(200ms));
}

TEST(AdmissionNoWorker, RequestFailsAfterTheNoWorkerTimeout) {
  CoordinatorConfig config = patient_config();
  config.no_worker_timeout = 500ms;
  auto coordinator = Coordinator::start(config);
  ASSERT_TRUE(coordinator);
  const auto start = Clock::now();
  auto handle = (*coordinator)->submit(request_of(4));
  ASSERT_TRUE(handle);
  auto result = handle->result_within(10000);
  const auto waited = Clock::now() - start;
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable) << result.error().to_string();
  EXPECT_THAT(result.error().message, HasSubstr("no worker"));
  EXPECT_THAT(result.error().message, HasSubstr("request "));
  EXPECT_GE(waited, 450ms);
  EXPECT_LT(waited, 3s);

  // The wait counts from when the last worker left, for requests queued while it ran.
  ScriptedWorker worker;
  ASSERT_TRUE(worker.join((*coordinator)->address(), small_model()).is_ok());
  auto served = (*coordinator)->submit(request_of(4));
  ASSERT_TRUE(served);
  ASSERT_TRUE(worker.next<net::AssignSlice>());
}

TEST(AdmissionNoWorker, DefaultIsTenSeconds) {
  EXPECT_EQ(CoordinatorConfig{}.no_worker_timeout, 10s);
}

TEST_F(Admission, OwnDeadlineCancelsOnTheWorkersAndFreesThem) {
  RequestOptions options = request_of(4, 2);
  options.timeout_ms = 400;
  const auto start = Clock::now();
  auto handle = coordinator_->submit(options);
  ASSERT_TRUE(handle);
  auto assign = worker_.next<net::AssignSlice>();
  ASSERT_TRUE(assign);
  // The worker never answers: the deadline passes.
  auto result = handle->result_within(10000);
  const auto waited = Clock::now() - start;
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kTimeout) << result.error().to_string();
  EXPECT_THAT(result.error().message,
              HasSubstr("request " + std::to_string(assign->request_id) + " timed out"));
  EXPECT_THAT(result.error().message, HasSubstr("its own deadline"));
  EXPECT_THAT(result.error().message, HasSubstr("scripted"));
  EXPECT_GE(waited, 350ms);
  EXPECT_LT(waited, 3s);
  auto cancel = worker_.next<net::Cancel>();
  ASSERT_TRUE(cancel);
  EXPECT_EQ(cancel->request_id, assign->request_id);
  auto status = coordinator_->status();
  ASSERT_TRUE(status);
  EXPECT_EQ(status->active_requests, 0u);
  EXPECT_EQ(status->workers.at(0).active_requests, 0u);
  // The next request runs.
  ASSERT_TRUE(coordinator_->submit(request_of(4)));
  auto next = worker_.next<net::AssignSlice>();
  ASSERT_TRUE(next);
  EXPECT_NE(next->request_id, assign->request_id);
}

TEST_F(Admission, RemoteDeadlineIsEnforcedByTheCoordinator) {
  auto client = Client::connect(coordinator_->address());
  ASSERT_TRUE(client);
  RequestOptions options = request_of(4);
  options.timeout_ms = 400;
  auto handle = (*client)->submit(options);
  ASSERT_TRUE(handle);
  ASSERT_TRUE(worker_.next<net::AssignSlice>());
  auto result = handle->result_within(10000);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kTimeout);
  // The coordinator's answer, which names the worker, came before the client gave up.
  EXPECT_THAT(result.error().message, HasSubstr("scripted")) << result.error().message;
  ASSERT_TRUE(worker_.next<net::Cancel>());
}

TEST_F(Admission, PerClientLimitRefusesWithResourceExhausted) {
  coordinator_.reset();
  CoordinatorConfig config = patient_config();
  config.max_requests_per_client = 2;
  auto started = Coordinator::start(config);
  ASSERT_TRUE(started);
  coordinator_ = std::move(started).value();
  ScriptedWorker worker;
  ASSERT_TRUE(worker.join(coordinator_->address(), small_model()).is_ok());
  auto client = Client::connect(coordinator_->address());
  ASSERT_TRUE(client);
  auto first = (*client)->submit(request_of(4));
  auto second = (*client)->submit(request_of(4));
  ASSERT_TRUE(first);
  ASSERT_TRUE(second);
  ASSERT_TRUE(worker.next<net::AssignSlice>());
  ASSERT_TRUE(worker.next<net::AssignSlice>());
  const Status refused = outcome((*client)->submit(request_of(4)));
  EXPECT_EQ(refused.code(), ErrorCode::kResourceExhausted) << refused.to_string();
  EXPECT_THAT(refused.message(), HasSubstr("max requests per client 2"));
  // Another client has its own share; a finished request frees a place.
  auto other = Client::connect(coordinator_->address());
  ASSERT_TRUE(other);
  EXPECT_TRUE((*other)->submit(request_of(4)));
  ASSERT_TRUE(worker.next<net::AssignSlice>());
  ASSERT_TRUE((*client)->cancel(first->id()).is_ok());
  EXPECT_EQ(first->result_within(5000).error().code, ErrorCode::kCancelled);
  auto after = (*client)->submit(request_of(4));
  ASSERT_TRUE(after);
  EXPECT_TRUE(worker.next<net::AssignSlice>());
}

TEST(AdmissionLimits, DefaultPerClientLimit) {
  EXPECT_EQ(CoordinatorConfig{}.max_requests_per_client, 32u);
}

}  // namespace
}  // namespace runahead
