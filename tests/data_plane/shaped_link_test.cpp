// The shaped link: blocks arrive intact and in order, no sooner than the capped rate allows,
// and jitter delays them without losing any; the inner transport's direct writes wait for the
// link like its sends.
#include <gtest/gtest.h>

#include <cstring>

#include "net/data/direct_write_data_plane.h"
#include "net/data/loopback_data_plane.h"
#include "net/data/peer_memory.h"
#include "net/data/peer_memory_access.h"
#include "net/data/shaped_link_data_plane.h"
#include "tests/data_plane/test_planes.h"

namespace runahead::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Received {
  std::vector<int64_t> order;
  std::vector<uint8_t> memory = std::vector<uint8_t>(8 << 20);
};

double send_blocks(LinkShape shape, int blocks, size_t bytes, Received& received) {
  auto hub = make_loopback_hub();
  auto inner = LoopbackDataPlane::create(hub, {"sender"});
  auto receiver = LoopbackDataPlane::create(hub, {"receiver"});
  EXPECT_TRUE(inner && receiver);
  auto sender = make_shaped_link_data_plane(std::move(inner).value(), shape);
  EXPECT_TRUE(sender);
  (*receiver)->set_receiver(
      [&](const KvBlockHeader& h) -> Result<void*> {
        return received.memory.data() + static_cast<size_t>(h.token_begin) * bytes;
      },
      [&](const KvBlockHeader& h, Status status) {
        if (status.is_ok()) received.order.push_back(h.token_begin);
      });
  EXPECT_TRUE((*sender)->connect(1, (*receiver)->local_address()).is_ok());
  const std::vector<uint8_t> payload = testing::pattern(bytes * static_cast<size_t>(blocks), 3);
  const auto start = Clock::now();
  std::vector<SendHandle> handles;
  for (int i = 0; i < blocks; ++i) {
    KvBlockHeader header;
    header.request_id = 1;
    header.token_begin = i;
    header.token_end = i + 1;
    header.payload_bytes = bytes;
    auto handle = (*sender)->post_send(1, header, payload.data() + static_cast<size_t>(i) * bytes);
    EXPECT_TRUE(handle);
    handles.push_back(*handle);
  }
  EXPECT_TRUE(testing::pump_until(
      {sender->get(), receiver->get()},
      [&] { return received.order.size() == static_cast<size_t>(blocks); }, 10s));
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (SendHandle handle : handles) {
    EXPECT_TRUE(testing::pump_until(
        {sender->get(), receiver->get()},
        [&] { return (*sender)->check(handle) == SendState::kDone; }, 5s));
  }
  EXPECT_EQ(std::memcmp(received.memory.data(), payload.data(), payload.size()), 0);
  return seconds;
}

TEST(ShapedLinkTest, RateCapHoldsBlocksBackToTheCappedRate) {
  Received received;
  // 8 x 256 KiB at 64 MB/s: at least 32 ms on the wire.
  const double seconds = send_blocks({.bytes_per_second = 64e6}, 8, 256 << 10, received);
  EXPECT_GE(seconds, 0.030);
  EXPECT_EQ(received.order, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(ShapedLinkTest, JitterDelaysBlocksButKeepsThemAllInOrder) {
  Received received;
  const double seconds =
      send_blocks({.bytes_per_second = 0.0, .max_jitter = 20ms, .seed = 5}, 16, 4096, received);
  EXPECT_GT(seconds, 0.005);  // 16 draws up to 20 ms: the largest is well above 5 ms
  ASSERT_EQ(received.order.size(), 16u);
  EXPECT_TRUE(std::is_sorted(received.order.begin(), received.order.end()));
}

TEST(ShapedLinkTest, UnshapedLinkIsNotDelayed) {
  Received received;
  const double seconds = send_blocks({}, 8, 256 << 10, received);
  EXPECT_LT(seconds, 5.0);
  EXPECT_EQ(received.order.size(), 8u);
}

TEST(ShapedLinkTest, DirectWritesOfTheInnerTransportWaitForTheLinkToo) {
  auto hub = make_loopback_hub();
  auto plain = LoopbackDataPlane::create(hub, {"plain"});
  ASSERT_TRUE(plain);
  auto shaped_plain = make_shaped_link_data_plane(std::move(plain).value(), {});
  ASSERT_TRUE(shaped_plain);
  EXPECT_EQ((*shaped_plain)->peer_memory(), nullptr);  // nothing to write with

  auto direct = [&](const std::string& name) -> std::unique_ptr<Transport> {
    auto inner = LoopbackDataPlane::create(hub, {name});
    EXPECT_TRUE(inner);
    auto plane = make_direct_write_data_plane(std::move(inner).value(),
                                              make_host_peer_memory_access(name), {.name = name});
    EXPECT_TRUE(plane);
    return std::move(plane).value();
  };
  auto sender = make_shaped_link_data_plane(direct("sender"), {.bytes_per_second = 64e6});
  ASSERT_TRUE(sender);
  std::unique_ptr<Transport> receiver = direct("receiver");
  PeerMemory* writes = (*sender)->peer_memory();
  ASSERT_NE(writes, nullptr);
  EXPECT_TRUE(writes->direct_path(receiver->local_address()));

  constexpr size_t kBytes = 64 << 10;
  constexpr int kBlocks = 4;
  auto region = std::make_shared<std::vector<uint8_t>>(kBytes * kBlocks);
  std::vector<int64_t> landed;
  receiver->set_receiver(
      [&](const KvBlockHeader& h) -> Result<void*> {
        return region->data() + static_cast<size_t>(h.token_begin) * kBytes;
      },
      [&](const KvBlockHeader& h, Status status) {
        if (status.is_ok()) landed.push_back(h.token_begin);
      });
  ASSERT_TRUE((*sender)->connect(1, receiver->local_address()).is_ok());
  auto exposure = receiver->peer_memory()->expose(region->data(), region->size(), region);
  ASSERT_TRUE(exposure);
  auto target = writes->open_target(1, *exposure);
  ASSERT_TRUE(target);

  const std::vector<uint8_t> payload = testing::pattern(kBytes * kBlocks, 9);
  const auto start = Clock::now();
  std::vector<SendHandle> handles;
  for (int i = 0; i < kBlocks; ++i) {
    KvBlockHeader header;
    header.request_id = 1;
    header.token_begin = i;
    header.token_end = i + 1;
    header.payload_bytes = kBytes;
    const size_t offset = static_cast<size_t>(i) * kBytes;
    auto handle = writes->post_write(*target, offset, header, payload.data() + offset);
    ASSERT_TRUE(handle);
    handles.push_back(*handle);
  }
  writes->close_target(*target);  // after the queued writes
  ASSERT_TRUE(testing::pump_until(
      {sender->get(), receiver.get()},
      [&] { return landed.size() == static_cast<size_t>(kBlocks); }, 10s));
  // 4 x 64 KiB at 64 MB/s: at least 4 ms on the wire.
  EXPECT_GE(std::chrono::duration<double>(Clock::now() - start).count(), 0.004);
  for (SendHandle handle : handles) {
    EXPECT_TRUE(testing::pump_until(
        {sender->get(), receiver.get()},
        [&] { return (*sender)->check(handle) == SendState::kDone; }, 5s));
  }
  EXPECT_EQ(landed, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(std::memcmp(region->data(), payload.data(), payload.size()), 0);
}

}  // namespace
}  // namespace runahead::net
