// The Transport contract, checked against every implementation: loopback, UCX over tcp, UCX
// over shared memory (two UCP workers in this process).
#include <poll.h>

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "net/data/transport.h"
#include "tests/data_plane/test_planes.h"

namespace runahead::net {
namespace {

using testing::all_plane_kinds;
using testing::pattern;
using testing::PlaneFactory;
using testing::PlaneKind;
using testing::pump_until;

constexpr uint8_t kUntouched = 0xAB;
constexpr uint64_t kRequest = 7;

// A receiver's K/V cache for one request: layers of `capacity` tokens, contiguous per layer.
class FakeCache {
 public:
  FakeCache(uint32_t layers, int64_t capacity, uint64_t bytes_per_token)
      : layers_(layers),
        capacity_(capacity),
        bytes_per_token_(bytes_per_token),
        bytes_(layers * static_cast<size_t>(capacity) * bytes_per_token, kUntouched) {}

  BlockLimits limits() const {
    return BlockLimits{
        .n_layers = layers_, .bytes_per_token = bytes_per_token_, .max_block_bytes = bytes_.size()};
  }
  uint8_t* at(uint32_t layer, int64_t token) {
    return bytes_.data() +
           (layer * static_cast<size_t>(capacity_) + static_cast<size_t>(token)) * bytes_per_token_;
  }
  // Resolves blocks of kRequest that fit; refuses the rest, as a worker would.
  Result<void*> resolve(const KvBlockHeader& header) {
    ++resolved;
    if (header.request_id != kRequest) {
      return make_error(ErrorCode::kNotFound,
                        "K/V block " + describe(header) + ": unknown request");
    }
    if (header.token_end > capacity_) {
      return make_error(ErrorCode::kOutOfRange,
                        "K/V block " + describe(header) + ": beyond the cache");
    }
    return static_cast<void*>(at(header.layer, header.token_begin));
  }
  std::vector<uint8_t>& bytes() { return bytes_; }

  int resolved = 0;

 private:
  uint32_t layers_;
  int64_t capacity_;
  uint64_t bytes_per_token_;
  std::vector<uint8_t> bytes_;
};

struct Landed {
  KvBlockHeader header;
  Status status;
};

class DataPlaneContractTest : public ::testing::TestWithParam<PlaneKind> {
 protected:
  void SetUp() override {
    factory_ = std::make_unique<PlaneFactory>(GetParam());
    sender_ = make("sender");
    receiver_ = make("receiver");
    ASSERT_TRUE(sender_ && receiver_);
    ASSERT_TRUE(sender_->connect(kReceiverPeer, receiver_->local_address()).is_ok());
    ASSERT_TRUE(receiver_->connect(kSenderPeer, sender_->local_address()).is_ok());
  }

  std::unique_ptr<Transport> make(const std::string& name, std::chrono::milliseconds send_timeout =
                                                               std::chrono::milliseconds(5000)) {
    Result<std::unique_ptr<Transport>> plane = factory_->make(name, send_timeout);
    EXPECT_TRUE(plane.is_ok()) << plane.status().to_string();
    return plane.is_ok() ? std::move(plane).value() : nullptr;
  }

  void receive_into(FakeCache& cache, Transport& plane, std::vector<Landed>& landed) {
    plane.set_block_limits(cache.limits());
    plane.set_receiver([&cache](const KvBlockHeader& h) { return cache.resolve(h); },
                       [&landed](const KvBlockHeader& h, Status s) {
                         landed.push_back({h, std::move(s)});
                       });
  }

  // Progresses both planes until every send ended; returns false on a hang.
  bool settle(const std::vector<SendHandle>& handles) {
    return pump_until({sender_.get(), receiver_.get()}, [&] {
      for (SendHandle h : handles) {
        if (sender_->check(h) == SendState::kInFlight) return false;
      }
      return true;
    });
  }

  static constexpr PeerId kReceiverPeer = 2;
  static constexpr PeerId kSenderPeer = 1;
  std::unique_ptr<PlaneFactory> factory_;
  std::unique_ptr<Transport> sender_;
  std::unique_ptr<Transport> receiver_;
};

KvBlockHeader block(uint32_t layer, int64_t begin, int64_t end, uint64_t bytes_per_token,
                    uint64_t request = kRequest) {
  return KvBlockHeader{.request_id = request,
                       .layer = layer,
                       .flags = 0,
                       .token_begin = begin,
                       .token_end = end,
                       .payload_bytes = static_cast<uint64_t>(end - begin) * bytes_per_token};
}

TEST_P(DataPlaneContractTest, BlockLandsIntactAtTheResolvedDestination) {
  constexpr uint64_t kBpt = 256;
  FakeCache cache(4, 64, kBpt);
  std::vector<Landed> landed;
  receive_into(cache, *receiver_, landed);

  const KvBlockHeader header = block(2, 16, 48, kBpt);
  const std::vector<uint8_t> payload = pattern(header.payload_bytes, 1);
  Result<SendHandle> handle = sender_->post_send(kReceiverPeer, header, payload.data());
  ASSERT_TRUE(handle.is_ok()) << handle.status().to_string();
  ASSERT_TRUE(pump_until({sender_.get(), receiver_.get()}, [&] { return !landed.empty(); }));
  ASSERT_TRUE(settle({*handle}));

  Status failure;
  EXPECT_EQ(sender_->check(*handle, &failure), SendState::kDone) << failure.to_string();
  sender_->release(*handle);
  ASSERT_EQ(landed.size(), 1u);
  EXPECT_TRUE(landed[0].status.is_ok()) << landed[0].status.to_string();
  EXPECT_EQ(landed[0].header.request_id, kRequest);
  EXPECT_EQ(landed[0].header.layer, 2u);
  EXPECT_EQ(landed[0].header.token_begin, 16);
  EXPECT_EQ(std::memcmp(cache.at(2, 16), payload.data(), payload.size()), 0);
  // Nothing outside the block was written.
  const size_t begin = static_cast<size_t>(cache.at(2, 16) - cache.bytes().data());
  for (size_t i = 0; i < cache.bytes().size(); ++i) {
    if (i >= begin && i < begin + payload.size()) continue;
    ASSERT_EQ(cache.bytes()[i], kUntouched) << "byte " << i << " written outside the block";
  }
}

TEST_P(DataPlaneContractTest, ManyBlocksOfMixedSizesAllLand) {
  // 1 KiB per token: blocks from 1 KiB (eager) to 2 MiB (rendezvous), 4 layers of 4096 tokens.
  constexpr uint64_t kBpt = 1024;
  constexpr uint32_t kLayers = 4;
  FakeCache cache(kLayers, 4096, kBpt);
  std::vector<Landed> landed;
  receive_into(cache, *receiver_, landed);

  const std::vector<uint8_t> source = pattern(cache.bytes().size(), 2);
  const std::vector<int64_t> chunks = {1, 7, 64, 1024, 1, 2000, 999};  // sums to 4096
  std::vector<SendHandle> handles;
  for (uint32_t layer = 0; layer < kLayers; ++layer) {
    int64_t begin = 0;
    for (int64_t tokens : chunks) {
      const KvBlockHeader header = block(layer, begin, begin + tokens, kBpt);
      const size_t offset = (layer * 4096 + static_cast<size_t>(begin)) * kBpt;
      Result<SendHandle> handle = sender_->post_send(kReceiverPeer, header, source.data() + offset);
      ASSERT_TRUE(handle.is_ok()) << handle.status().to_string();
      handles.push_back(*handle);
      begin += tokens;
    }
  }
  ASSERT_TRUE(
      pump_until({sender_.get(), receiver_.get()}, [&] { return landed.size() == handles.size(); }))
      << landed.size() << " of " << handles.size() << " blocks landed";
  ASSERT_TRUE(settle(handles));
  for (SendHandle h : handles) {
    Status failure;
    EXPECT_EQ(sender_->check(h, &failure), SendState::kDone) << failure.to_string();
    sender_->release(h);
  }
  for (const Landed& each : landed) EXPECT_TRUE(each.status.is_ok()) << each.status.to_string();
  EXPECT_TRUE(cache.bytes() == source) << "the cache differs from what was sent";
}

TEST_P(DataPlaneContractTest, RefusedBlocksWriteNothingAndDoNotStopTheReceiver) {
  constexpr uint64_t kBpt = 1024;
  FakeCache cache(4, 4096, kBpt);
  std::vector<Landed> landed;
  receive_into(cache, *receiver_, landed);
  const std::vector<uint8_t> payload = pattern(3 * 1024 * 1024, 3);

  KvBlockHeader wrong_size = block(1, 0, 4, kBpt);
  wrong_size.payload_bytes = 3 * kBpt;  // disagrees with its 4 tokens
  KvBlockHeader wrong_size_large = block(1, 0, 2048, kBpt);
  wrong_size_large.payload_bytes = 2047 * kBpt;
  const std::vector<KvBlockHeader> refused = {
      block(9, 0, 4, kBpt),                     // layer out of range
      wrong_size,                               // small, size disagrees with the range
      wrong_size_large,                         // large, size disagrees with the range
      block(1, 0, 4, kBpt, /*request=*/99),     // unknown request, small
      block(1, 0, 2048, kBpt, /*request=*/99),  // unknown request, 2 MiB
      block(1, 4000, 5000, kBpt),               // beyond the cache, ~1 MiB
  };
  std::vector<SendHandle> handles;
  for (const KvBlockHeader& header : refused) {
    Result<SendHandle> handle = sender_->post_send(kReceiverPeer, header, payload.data());
    ASSERT_TRUE(handle.is_ok()) << handle.status().to_string();
    handles.push_back(*handle);
  }
  const KvBlockHeader good = block(3, 100, 1124, kBpt);  // 1 MiB
  Result<SendHandle> good_handle = sender_->post_send(kReceiverPeer, good, payload.data());
  ASSERT_TRUE(good_handle.is_ok()) << good_handle.status().to_string();
  handles.push_back(*good_handle);

  ASSERT_TRUE(settle(handles)) << "a refused block left its send hanging";
  ASSERT_TRUE(pump_until({sender_.get(), receiver_.get()}, [&] { return !landed.empty(); }));
  Status failure;
  EXPECT_EQ(sender_->check(*good_handle, &failure), SendState::kDone) << failure.to_string();

  ASSERT_EQ(landed.size(), 1u) << "only the valid block may complete";
  EXPECT_EQ(landed[0].header.layer, 3u);
  EXPECT_TRUE(landed[0].status.is_ok());
  uint8_t* good_begin = cache.at(3, 100);
  EXPECT_EQ(std::memcmp(good_begin, payload.data(), good.payload_bytes), 0);
  for (size_t i = 0; i < cache.bytes().size(); ++i) {
    const uint8_t* here = cache.bytes().data() + i;
    if (here >= good_begin && here < good_begin + good.payload_bytes) continue;
    ASSERT_EQ(*here, kUntouched) << "byte " << i << " written by a refused block";
  }
  // Refused by the limits before the resolver was asked: layer 9 and the two wrong sizes.
  EXPECT_EQ(cache.resolved, 4);
}

TEST_P(DataPlaneContractTest, CompletionMayForwardTheBlock) {
  // Cut-through: the middle plane forwards each block from inside its completion callback.
  constexpr uint64_t kBpt = 512;
  std::unique_ptr<Transport> last = make("last");
  ASSERT_TRUE(last);
  constexpr PeerId kLastPeer = 3;
  ASSERT_TRUE(receiver_->connect(kLastPeer, last->local_address()).is_ok());

  FakeCache middle(2, 4096, kBpt);
  FakeCache end(2, 4096, kBpt);
  std::vector<SendHandle> forwarded;
  receiver_->set_block_limits(middle.limits());
  receiver_->set_receiver([&](const KvBlockHeader& h) { return middle.resolve(h); },
                          [&](const KvBlockHeader& h, Status s) {
                            ASSERT_TRUE(s.is_ok()) << s.to_string();
                            Result<SendHandle> handle = receiver_->post_send(
                                kLastPeer, h, middle.at(h.layer, h.token_begin));
                            ASSERT_TRUE(handle.is_ok()) << handle.status().to_string();
                            forwarded.push_back(*handle);
                          });
  std::vector<Landed> landed;
  receive_into(end, *last, landed);

  const std::vector<uint8_t> source = pattern(2 * 4096 * kBpt, 4);
  std::vector<SendHandle> handles;
  for (uint32_t layer = 0; layer < 2; ++layer) {
    for (int64_t begin : {0, 1000}) {
      const int64_t tokens = begin == 0 ? 1000 : 3096;
      const KvBlockHeader header = block(layer, begin, begin + tokens, kBpt);
      Result<SendHandle> handle =
          sender_->post_send(kReceiverPeer, header, source.data() + (layer * 4096 + begin) * kBpt);
      ASSERT_TRUE(handle.is_ok());
      handles.push_back(*handle);
    }
  }
  ASSERT_TRUE(
      pump_until({sender_.get(), receiver_.get(), last.get()}, [&] { return landed.size() == 4; }));
  for (const Landed& each : landed) EXPECT_TRUE(each.status.is_ok());
  EXPECT_TRUE(end.bytes() == source);
  EXPECT_EQ(forwarded.size(), 4u);
}

TEST_P(DataPlaneContractTest, EventFdWakesAnIdleReceiver) {
  constexpr uint64_t kBpt = 1024;
  FakeCache cache(1, 2048, kBpt);
  std::vector<Landed> landed;
  receive_into(cache, *receiver_, landed);
  ASSERT_GE(receiver_->event_fd(), 0);
  // Let the receiver go idle first: progress until it arms.
  ASSERT_TRUE(pump_until({sender_.get(), receiver_.get()}, [&] { return receiver_->arm(); }));

  const KvBlockHeader header = block(0, 0, 2048, kBpt);  // 2 MiB
  const std::vector<uint8_t> payload = pattern(header.payload_bytes, 5);
  Result<SendHandle> handle = sender_->post_send(kReceiverPeer, header, payload.data());
  ASSERT_TRUE(handle.is_ok());

  // The receiver progresses only when its fd says so (or arm() refuses), as under Asio.
  int wakeups = 0;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  bool armed = true;
  while (landed.empty() && std::chrono::steady_clock::now() < give_up) {
    sender_->progress();
    if (armed) {
      pollfd fd{.fd = receiver_->event_fd(), .events = POLLIN, .revents = 0};
      if (::poll(&fd, 1, 1) <= 0) continue;
      ++wakeups;
    }
    receiver_->progress();
    armed = receiver_->arm();
  }
  ASSERT_EQ(landed.size(), 1u);
  EXPECT_GE(wakeups, 1);
  EXPECT_EQ(std::memcmp(cache.at(0, 0), payload.data(), payload.size()), 0);
  ASSERT_TRUE(settle({*handle}));
}

TEST_P(DataPlaneContractTest, PeerThatDisappearsFailsSendsInBoundedTime) {
  // A fresh sender with a short send timeout: shared memory within one process cannot see
  // the peer die, so the timeout is what bounds it there.
  std::unique_ptr<Transport> sender = make("short-fuse", std::chrono::milliseconds(500));
  ASSERT_TRUE(sender);
  constexpr PeerId kDoomed = 5;
  ASSERT_TRUE(sender->connect(kDoomed, receiver_->local_address()).is_ok());
  FakeCache cache(1, 4096, 1024);
  std::vector<Landed> landed;
  receive_into(cache, *receiver_, landed);

  const KvBlockHeader header = block(0, 0, 4096, 1024);  // 4 MiB: rendezvous over UCX
  const std::vector<uint8_t> payload = pattern(header.payload_bytes, 6);
  Result<SendHandle> handle = sender->post_send(kDoomed, header, payload.data());
  ASSERT_TRUE(handle.is_ok());
  sender->progress();
  receiver_.reset();  // gone without ever receiving

  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(pump_until(
      {sender.get()}, [&] { return sender->check(*handle) != SendState::kInFlight; },
      std::chrono::seconds(5)))
      << "the send to a vanished peer still hangs";
  Status failure;
  EXPECT_EQ(sender->check(*handle, &failure), SendState::kFailed);
  EXPECT_NE(failure.to_string().find("peer 5"), std::string::npos) << failure.to_string();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));

  // Later sends to it fail too, at once or soon.
  Result<SendHandle> later = sender->post_send(kDoomed, header, payload.data());
  if (later.is_ok()) {
    ASSERT_TRUE(pump_until(
        {sender.get()}, [&] { return sender->check(*later) != SendState::kInFlight; },
        std::chrono::seconds(5)));
    EXPECT_EQ(sender->check(*later), SendState::kFailed);
  } else {
    EXPECT_NE(later.status().to_string().find("peer 5"), std::string::npos)
        << later.status().to_string();
  }
}

TEST_P(DataPlaneContractTest, SendToUnknownPeerFailsAtOnce) {
  const std::vector<uint8_t> payload(1024);
  Result<SendHandle> handle = sender_->post_send(42, block(0, 0, 1, 1024), payload.data());
  ASSERT_FALSE(handle.is_ok());
  EXPECT_EQ(handle.error().code, ErrorCode::kNotFound);
  EXPECT_NE(handle.error().message.find("peer 42"), std::string::npos);
}

TEST_P(DataPlaneContractTest, MalformedAddressIsRefused) {
  const Status status = sender_->connect(9, std::vector<uint8_t>{1, 2, 3});
  ASSERT_FALSE(status.is_ok());
  EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(status.message().find("peer 9"), std::string::npos) << status.message();
}

std::string plane_name(const ::testing::TestParamInfo<PlaneKind>& param) {
  return param.param.label;
}

INSTANTIATE_TEST_SUITE_P(AllPlanes, DataPlaneContractTest, ::testing::ValuesIn(all_plane_kinds()),
                         plane_name);

}  // namespace
}  // namespace runahead::net
