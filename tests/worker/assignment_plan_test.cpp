// The pure part of taking an assignment: what a worker computes, caches, receives, sends and
// decodes, and every assignment it refuses, without processes or a data plane.
#include "actors/assignment_plan.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "model/random_model.h"

namespace runahead {
namespace {

constexpr uint64_t kSelf = 20;

ModelConfig model_config() {
  ModelConfig config = *preset_config("tiny-llama");
  config.max_positions = 256;
  config.eos_token = 2;
  return config;
}

std::vector<uint8_t> address(uint64_t worker) {
  return {static_cast<uint8_t>(worker), 0xAB};
}

// A chain of workers 100, 101, ... with this worker (kSelf) at `index`, the prompt cut evenly.
net::AssignSlice assignment(uint32_t index, uint32_t workers, uint64_t prompt_tokens = 120) {
  net::AssignSlice assign;
  assign.request_id = 7;
  for (uint32_t i = 0; i < workers; ++i) {
    const uint64_t id = i == index ? kSelf : 100 + i;
    assign.chain.push_back(net::ChainMember{.worker_id = id, .data_plane_address = address(id)});
  }
  assign.index = index;
  assign.total_prompt_tokens = prompt_tokens;
  assign.slice_begin = prompt_tokens * index / workers;
  assign.slice_end = prompt_tokens * (index + 1) / workers;
  for (uint64_t t = assign.slice_begin; t < assign.slice_end; ++t) {
    assign.tokens.push_back(static_cast<int32_t>(t % 50));
  }
  for (uint64_t t = 0; t < assign.slice_begin; ++t) {
    assign.history_tokens.push_back(static_cast<int32_t>(t % 50));
  }
  assign.max_new_tokens = 16;
  return assign;
}

DirectPath reaching(std::set<uint64_t> direct) {
  return [direct](const std::vector<uint8_t>& peer) { return direct.count(peer.front()) != 0; };
}
const DirectPath kNoDirectPath = reaching({});

Result<AssignmentPlan> plan(const net::AssignSlice& assign,
                            const DirectPath& direct = kNoDirectPath,
                            const ModelConfig& config = model_config()) {
  return plan_assignment(assign, kSelf, config, 1234, direct);
}

TEST(AssignmentPlanTest, AMiddleWorkerComputesItsRowsAndForwardsToItsSuccessor) {
  const net::AssignSlice assign = assignment(1, 3);
  auto planned = plan(assign);
  ASSERT_TRUE(planned.is_ok()) << planned.error().to_string();
  const SlicePlan& slice = planned->slice;
  EXPECT_EQ(slice.request_id, 7u);
  EXPECT_EQ(slice.begin, 40);
  EXPECT_EQ(slice.end, 80);
  EXPECT_EQ(slice.cache_tokens, 80);  // no decoding here: its own rows and the prefix
  EXPECT_EQ(slice.staging_chunk_bytes, 1234u);
  ASSERT_TRUE(slice.successor.has_value());
  EXPECT_EQ(*slice.successor, assign.chain[2].worker_id);
  EXPECT_TRUE(slice.hold_sends);
  EXPECT_EQ(slice.outbound, KvRoute::kSend);
  EXPECT_EQ(slice.inbound, KvRoute::kSend);
  EXPECT_EQ(slice.later_workers, std::vector<net::PeerId>{assign.chain[2].worker_id});
  EXPECT_FALSE(planned->direct_to_all);
  ASSERT_EQ(planned->connect.size(), 1u);
  EXPECT_EQ(planned->connect[0], assign.chain[2]);
  EXPECT_FALSE(planned->decode.has_value());
}

TEST(AssignmentPlanTest, OnlyFanOutConnectsToWorkersPastTheSuccessor) {
  const net::AssignSlice assign = assignment(1, 4);
  const uint64_t before = assign.chain[0].worker_id;
  const uint64_t next = assign.chain[2].worker_id;
  const uint64_t after = assign.chain[3].worker_id;

  auto partly = plan(assign, reaching({before, next}));
  ASSERT_TRUE(partly.is_ok());
  EXPECT_FALSE(partly->direct_to_all);
  EXPECT_EQ(partly->slice.outbound, KvRoute::kDirectWrite);
  EXPECT_EQ(partly->slice.inbound, KvRoute::kDirectWrite);
  EXPECT_EQ(partly->slice.later_workers, (std::vector<net::PeerId>{next, after}));
  ASSERT_EQ(partly->connect.size(), 1u);
  EXPECT_EQ(partly->connect[0].worker_id, next);

  auto all = plan(assign, reaching({before, next, after}));
  ASSERT_TRUE(all.is_ok());
  EXPECT_TRUE(all->direct_to_all);
  ASSERT_EQ(all->connect.size(), 2u);
  EXPECT_EQ(all->connect[0].worker_id, next);
  EXPECT_EQ(all->connect[1].worker_id, after);
}

TEST(AssignmentPlanTest, TheFirstWorkerReceivesNothing) {
  auto planned = plan(assignment(0, 2), reaching({101}));
  ASSERT_TRUE(planned.is_ok());
  EXPECT_EQ(planned->slice.begin, 0);
  EXPECT_EQ(planned->slice.inbound, KvRoute::kSend);
  EXPECT_EQ(planned->slice.outbound, KvRoute::kDirectWrite);
  EXPECT_TRUE(planned->direct_to_all);
}

TEST(AssignmentPlanTest, TheLastWorkerDecodesOnACacheForEveryTokenButTheLast) {
  net::AssignSlice assign = assignment(2, 3);
  assign.sampling = SamplingOptions{
      .temperature = 0.5f, .top_k = 7, .top_p = 0.9f, .repetition_penalty = 1.2f, .seed = 99};
  assign.top_logprobs = 3;
  assign.return_logits = true;
  auto planned = plan(assign, reaching({100, 101}));
  ASSERT_TRUE(planned.is_ok()) << planned.error().to_string();
  EXPECT_FALSE(planned->slice.successor.has_value());
  EXPECT_FALSE(planned->slice.hold_sends);
  EXPECT_TRUE(planned->slice.later_workers.empty());
  EXPECT_TRUE(planned->connect.empty());
  EXPECT_EQ(planned->slice.inbound, KvRoute::kDirectWrite);
  EXPECT_TRUE(planned->direct_to_all);
  EXPECT_EQ(planned->slice.cache_tokens, 120 + 16 - 1);
  ASSERT_TRUE(planned->decode.has_value());
  const DecodePlan& decode = *planned->decode;
  EXPECT_EQ(decode.prompt_tokens, 120);
  EXPECT_EQ(decode.max_new_tokens, 16);
  EXPECT_EQ(decode.sampling.temperature, 0.5f);
  EXPECT_EQ(decode.sampling.top_k, 7);
  EXPECT_EQ(decode.sampling.top_p, 0.9f);
  EXPECT_EQ(decode.sampling.seed, 99u);
  EXPECT_EQ(decode.sampling.repetition_penalty, 1.2f);
  EXPECT_EQ(decode.top_logprobs, 3);
  EXPECT_TRUE(decode.return_logits);
  EXPECT_EQ(decode.stop_token, 2);
  std::vector<int32_t> prompt = assign.history_tokens;
  prompt.insert(prompt.end(), assign.tokens.begin(), assign.tokens.end());
  EXPECT_EQ(decode.history, prompt);

  assign.ignore_eos = true;
  planned = plan(assign);
  ASSERT_TRUE(planned.is_ok());
  EXPECT_EQ(planned->decode->stop_token, -1);
}

TEST(AssignmentPlanTest, AWorkerAloneDecodesAndHasNoFanOut) {
  auto planned = plan(assignment(0, 1), reaching({kSelf}));
  ASSERT_TRUE(planned.is_ok());
  EXPECT_FALSE(planned->direct_to_all);
  EXPECT_TRUE(planned->decode.has_value());
  EXPECT_EQ(planned->slice.begin, 0);
  EXPECT_EQ(planned->slice.end, 120);
}

TEST(AssignmentPlanTest, TheCacheStopsAtTheModelsLimit) {
  net::AssignSlice assign = assignment(1, 2, 250);
  assign.max_new_tokens = 100;
  auto planned = plan(assign);
  ASSERT_TRUE(planned.is_ok()) << planned.error().to_string();
  EXPECT_EQ(planned->slice.cache_tokens, 256);
}

void expect_refused(const net::AssignSlice& assign, ErrorCode code, const std::string& says) {
  auto planned = plan(assign);
  ASSERT_FALSE(planned.is_ok()) << "accepted; expected: " << says;
  EXPECT_EQ(planned.error().code, code) << planned.error().to_string();
  EXPECT_NE(planned.error().message.find(says), std::string::npos) << planned.error().message;
}

TEST(AssignmentPlanTest, RefusesAssignmentsThatDoNotHoldTogether) {
  net::AssignSlice outside = assignment(1, 3);
  outside.index = 3;
  expect_refused(outside, ErrorCode::kInvalidArgument, "outside the chain");

  net::AssignSlice other = assignment(1, 3);
  other.chain[1].worker_id = 99;
  expect_refused(other, ErrorCode::kInvalidArgument, "another worker");

  net::AssignSlice empty = assignment(1, 3);
  empty.slice_end = empty.slice_begin;
  expect_refused(empty, ErrorCode::kInvalidArgument, "invalid slice [40, 40) of 120 tokens");

  net::AssignSlice past = assignment(2, 3);
  past.slice_end = 121;
  expect_refused(past, ErrorCode::kInvalidArgument, "invalid slice");

  net::AssignSlice short_slice = assignment(1, 3);
  short_slice.tokens.pop_back();
  expect_refused(short_slice, ErrorCode::kInvalidArgument, "holds 39 tokens, not 40");

  net::AssignSlice too_long = assignment(1, 2, 300);
  expect_refused(too_long, ErrorCode::kOutOfRange,
                 "300 tokens, more than the model's limit of 256");

  net::AssignSlice nothing_new = assignment(1, 2);
  nothing_new.max_new_tokens = 0;
  expect_refused(nothing_new, ErrorCode::kInvalidArgument, "max new tokens must be at least 1");
  net::AssignSlice first = assignment(0, 2);  // not last: it decodes nothing anyway
  first.max_new_tokens = 0;
  EXPECT_TRUE(plan(first).is_ok());

  net::AssignSlice hot = assignment(1, 2);
  hot.sampling.temperature = -1.0f;
  expect_refused(hot, ErrorCode::kInvalidArgument, "temperature");

  net::AssignSlice many = assignment(1, 2);
  many.top_logprobs = static_cast<uint32_t>(model_config().vocab_size) + 1;
  expect_refused(many, ErrorCode::kInvalidArgument, "top_logprobs");
}

TEST(AssignmentPlanTest, RefusesToRunPastTheSlidingWindow) {
  ModelConfig windowed = model_config();
  windowed.sliding_window = 64;
  auto planned = plan(assignment(1, 2), kNoDirectPath, windowed);
  ASSERT_FALSE(planned.is_ok());
  EXPECT_EQ(planned.error().code, ErrorCode::kInvalidArgument);
}

TEST(AssignmentPlanTest, KvIsTakenOnlyFromThePlannedSendersWithTheRequestsCapability) {
  net::AssignSlice assign = assignment(2, 4);
  for (size_t i = 0; i < assign.kv_capability.size(); ++i) {
    assign.kv_capability[i] = static_cast<uint8_t>(3 * i + 1);
  }
  auto planned = plan(assign);
  ASSERT_TRUE(planned.is_ok()) << planned.error().to_string();
  EXPECT_EQ(planned->slice.worker_id, kSelf);  // the sender its own blocks name
  EXPECT_EQ(planned->slice.capability.bytes, assign.kv_capability);
  // Without fan-out only the predecessor sends here.
  EXPECT_EQ(planned->slice.senders, std::vector<uint64_t>{assign.chain[1].worker_id});

  // Where fan-out is possible (every pair direct, more than two workers), every earlier one.
  auto fan_out = plan(assign, reaching({100, 101, 103}));
  ASSERT_TRUE(fan_out.is_ok()) << fan_out.error().to_string();
  ASSERT_TRUE(fan_out->direct_to_all);
  EXPECT_EQ(fan_out->slice.senders,
            (std::vector<uint64_t>{assign.chain[0].worker_id, assign.chain[1].worker_id}));

  // The first worker takes K/V from nobody.
  auto first = plan(assignment(0, 4));
  ASSERT_TRUE(first.is_ok()) << first.error().to_string();
  EXPECT_TRUE(first->slice.senders.empty());
}

}  // namespace
}  // namespace runahead
