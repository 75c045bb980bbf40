// The check every K/V block passes before a receiver writes it (net/data/block_admission.h):
// only the request's planned senders, with the request's capability; and the rate-limited log
// of refused blocks (net/data/refusal_log.h).
#include "net/data/block_admission.h"

#include <gtest/gtest.h>

#include <spdlog/sinks/ringbuffer_sink.h>

#include <string>
#include <vector>

#include "core/log.h"
#include "net/data/refusal_log.h"

namespace runahead::net {
namespace {

constexpr uint64_t kRequest = 7;
constexpr uint64_t kPredecessor = 3;

KvCapability capability_of(uint8_t seed) {
  KvCapability capability;
  for (size_t i = 0; i < capability.bytes.size(); ++i) {
    capability.bytes[i] = static_cast<uint8_t>(seed + 17 * i);
  }
  return capability;
}

const std::vector<uint64_t> kSenders = {kPredecessor};
const BlockAdmission kAdmission{
    .request_id = kRequest, .senders = kSenders, .capability = capability_of(1)};

KvBlockHeader block_from(uint64_t sender, uint64_t request, const KvCapability& capability) {
  return KvBlockHeader{.request_id = request,
                       .layer = 2,
                       .flags = 0,
                       .token_begin = 0,
                       .token_end = 4,
                       .payload_bytes = 4096,
                       .sender_worker = sender,
                       .capability = capability};
}

TEST(BlockAdmissionTest, ThePlannedSenderWithTheCapabilityIsAccepted) {
  EXPECT_TRUE(
      admit_block(block_from(kPredecessor, kRequest, capability_of(1)), kAdmission).is_ok());
}

TEST(BlockAdmissionTest, AnyOfSeveralPlannedSendersIsAccepted) {
  const std::vector<uint64_t> earlier = {1, 2, 3};  // fan-out: every earlier worker
  const BlockAdmission admission{
      .request_id = kRequest, .senders = earlier, .capability = capability_of(1)};
  for (uint64_t sender : earlier) {
    EXPECT_TRUE(admit_block(block_from(sender, kRequest, capability_of(1)), admission).is_ok());
  }
}

TEST(BlockAdmissionTest, AWrongSenderIsRefusedNamingIt) {
  const Status refused = admit_block(block_from(9, kRequest, capability_of(1)), kAdmission);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.code(), ErrorCode::kProtocol);
  EXPECT_NE(refused.message().find("worker 9"), std::string::npos) << refused.message();
  EXPECT_NE(refused.message().find("not a planned sender"), std::string::npos) << refused.message();
}

TEST(BlockAdmissionTest, AWrongRequestIsRefused) {
  const Status refused = admit_block(block_from(kPredecessor, 8, capability_of(1)), kAdmission);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.code(), ErrorCode::kProtocol);
  EXPECT_NE(refused.message().find("another request"), std::string::npos) << refused.message();
}

TEST(BlockAdmissionTest, AWrongCapabilityIsRefusedWithoutNamingEither) {
  for (size_t byte = 0; byte < KvCapability{}.bytes.size(); ++byte) {
    KvCapability wrong = capability_of(1);
    wrong.bytes[byte] ^= 0x01;  // one bit off, anywhere
    const Status refused = admit_block(block_from(kPredecessor, kRequest, wrong), kAdmission);
    ASSERT_FALSE(refused.is_ok()) << "byte " << byte;
    EXPECT_NE(refused.message().find("capability does not match"), std::string::npos);
  }
  // All zeros: what a sender that knows nothing of the request would send.
  const Status zero = admit_block(block_from(kPredecessor, kRequest, KvCapability{}), kAdmission);
  EXPECT_FALSE(zero.is_ok());
}

TEST(BlockAdmissionTest, NoSenderNamedTakesNothing) {
  // The first worker of a chain receives nothing, whoever claims to send.
  const BlockAdmission first{.request_id = kRequest, .senders = {}, .capability = capability_of(1)};
  EXPECT_FALSE(admit_block(block_from(0, kRequest, capability_of(1)), first).is_ok());
  EXPECT_FALSE(admit_block(block_from(kPredecessor, kRequest, capability_of(1)), first).is_ok());
}

TEST(BlockAdmissionTest, SameCapabilityComparesEveryByte) {
  EXPECT_TRUE(same_capability(capability_of(5), capability_of(5)));
  EXPECT_FALSE(same_capability(capability_of(5), capability_of(6)));
  KvCapability last_differs = capability_of(5);
  last_differs.bytes.back() ^= 0x80;
  EXPECT_FALSE(same_capability(capability_of(5), last_differs));
}

TEST(RefusalLogTest, AFloodOfRefusalsLogsABurstThenOneSummary) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1024);
  sink->set_pattern("%v");
  auto log = logger("data_plane");
  const auto level = log->level();
  log->set_level(spdlog::level::warn);
  log->sinks().push_back(sink);
  {
    RefusalLog refusals("test plane", 5, std::chrono::hours(1));
    const Status why = make_error(ErrorCode::kProtocol, "its capability does not match");
    for (int i = 0; i < 1000; ++i) refusals.refused("worker 9", why);
    EXPECT_EQ(refusals.total(), 1000u);
  }  // the summary of what was left out comes at the latest here
  log->sinks().pop_back();
  log->set_level(level);
  const std::vector<std::string> lines = sink->last_formatted();
  ASSERT_EQ(lines.size(), 6u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_NE(lines[i].find("test plane: refused a K/V block from worker 9"), std::string::npos);
  }
  EXPECT_NE(lines[5].find("995 more K/V blocks refused"), std::string::npos) << lines[5];
}

}  // namespace
}  // namespace runahead::net
