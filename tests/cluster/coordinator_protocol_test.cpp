// The coordinator against a scripted worker speaking the control protocol directly: messages
// out of turn, for unknown requests or from the wrong worker are ignored; the request still
// gets its one answer; a worker with another model is refused at Hello.
#include <gtest/gtest.h>

#include <optional>

#include "net/control/control_client.h"
#include "runahead/coordinator.h"
#include "tests/cluster/scripted_worker.h"

namespace runahead {
namespace {

using namespace std::chrono_literals;
using testing::ScriptedWorker;

// The model the scripted workers claim to run, and the coordinators below expect.
constexpr const char* kHash = "00000000c0ffee00";
constexpr const char* kOtherHash = "00000000beef0000";

CoordinatorConfig expecting_the_model() {
  CoordinatorConfig config;
  config.expected_model_hash = kHash;
  return config;
}

net::Token token_message(uint64_t request_id, int32_t token, uint32_t index, bool is_last) {
  net::Token message;
  message.request_id = request_id;
  message.token = token;
  message.index = index;
  message.is_last = is_last;
  return message;
}

TEST(CoordinatorProtocolTest, IgnoresMessagesOutOfTurnAndAnswersOnce) {
  auto coordinator = Coordinator::start(expecting_the_model());
  ASSERT_TRUE(coordinator);
  ScriptedWorker worker;
  ASSERT_TRUE(worker.join((*coordinator)->address(), kHash).is_ok());

  RequestOptions options;
  options.prompt_tokens = {5, 6, 7, 8};
  options.max_new_tokens = 2;
  auto handle = (*coordinator)->submit(options);
  ASSERT_TRUE(handle);
  auto assign = worker.next<net::AssignSlice>();
  ASSERT_TRUE(assign);
  EXPECT_EQ(assign->tokens, options.prompt_tokens);
  EXPECT_EQ(assign->chain.size(), 1u);
  const uint64_t id = assign->request_id;

  // Junk: a token out of order, a token and a SliceDone for a request that does not exist.
  ASSERT_TRUE(worker.send(token_message(id, 1, 3, true)).is_ok());
  ASSERT_TRUE(worker.send(token_message(999, 1, 0, true)).is_ok());
  ASSERT_TRUE(
      worker.send(net::SliceDone{.request_id = 999, .worker_id = 1, .index = 0, .timeline = {}})
          .is_ok());
  // The protocol: ready, start, tokens in order, done.
  ASSERT_TRUE(worker
                  .send(net::SliceReady{.request_id = id,
                                        .worker_id = worker.id(),
                                        .index = 0,
                                        .kv_target = {},
                                        .direct_to_all = false})
                  .is_ok());
  ASSERT_TRUE(worker.next<net::StartSlice>());
  ASSERT_TRUE(worker.send(token_message(id, 41, 0, false)).is_ok());
  ASSERT_TRUE(worker.send(token_message(id, 42, 1, true)).is_ok());
  ASSERT_TRUE(worker
                  .send(net::SliceDone{
                      .request_id = id, .worker_id = worker.id(), .index = 0, .timeline = {}})
                  .is_ok());
  auto result = handle->result_within(10000);
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_EQ(result->tokens, (std::vector<int32_t>{41, 42}));

  // A late duplicate changes nothing; the coordinator is still answering.
  ASSERT_TRUE(worker
                  .send(net::SliceDone{
                      .request_id = id, .worker_id = worker.id(), .index = 0, .timeline = {}})
                  .is_ok());
  auto status = (*coordinator)->status();
  ASSERT_TRUE(status);
  EXPECT_EQ(status->workers.size(), 1u);
  EXPECT_EQ(status->active_requests, 0u);
}

TEST(CoordinatorProtocolTest, WorkerErrorFailsTheRequestWithItsMessage) {
  auto coordinator = Coordinator::start(expecting_the_model());
  ASSERT_TRUE(coordinator);
  ScriptedWorker worker;
  ASSERT_TRUE(worker.join((*coordinator)->address(), kHash).is_ok());
  RequestOptions options;
  options.prompt_tokens = {1, 2, 3};
  auto handle = (*coordinator)->submit(options);
  ASSERT_TRUE(handle);
  auto assign = worker.next<net::AssignSlice>();
  ASSERT_TRUE(assign);
  ASSERT_TRUE(worker
                  .send(net::RequestError{.request_id = assign->request_id,
                                          .code = ErrorCode::kDevice,
                                          .message = "worker scripted: CUDA out of memory"})
                  .is_ok());
  auto result = handle->result_within(10000);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kDevice);
  EXPECT_NE(result.error().message.find("scripted"), std::string::npos);
  // The other workers of the request are told to cancel; here the chain is this worker alone.
  EXPECT_TRUE(worker.next<net::Cancel>());
}

TEST(CoordinatorProtocolTest, RefusesAWorkerWithAnotherModel) {
  auto coordinator = Coordinator::start(expecting_the_model());
  ASSERT_TRUE(coordinator);
  ScriptedWorker first;
  ASSERT_TRUE(first.join((*coordinator)->address(), kHash).is_ok());
  ScriptedWorker second;
  const Status refused = second.join((*coordinator)->address(), kOtherHash);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.message().find(kOtherHash), std::string::npos) << refused.message();
  EXPECT_NE(refused.message().find(kHash), std::string::npos) << refused.message();
}

TEST(CoordinatorProtocolTest, SilentWorkerIsDeclaredDeadAndItsRequestFails) {
  CoordinatorConfig config = expecting_the_model();
  config.heartbeat_timeout = 300ms;
  auto coordinator = Coordinator::start(config);
  ASSERT_TRUE(coordinator);
  ScriptedWorker worker;  // sends no heartbeats: a worker cut off without its socket closing
  ASSERT_TRUE(worker.join((*coordinator)->address(), kHash).is_ok());
  RequestOptions options;
  options.prompt_tokens = {1, 2, 3};
  auto handle = (*coordinator)->submit(options);
  ASSERT_TRUE(handle);
  const auto start = std::chrono::steady_clock::now();
  auto result = handle->result_within(10000);
  ASSERT_FALSE(result);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_NE(result.error().message.find("scripted"), std::string::npos) << result.error().message;
  EXPECT_NE(result.error().message.find("heartbeat"), std::string::npos);
}

}  // namespace
}  // namespace runahead
