// Direct writes (PeerMemory::expose / open_target / post_write) over the direct-write plane with
// host memory: the block lands where the receiver exposed it, the receiver's resolver and
// completion run as for a sent block, writes that do not fit are refused, and the exposed memory
// lives until the writer let go of it.
#include <gtest/gtest.h>

#include <cstring>

#include "net/data/direct_write_data_plane.h"
#include "net/data/peer_memory.h"
#include "net/data/peer_memory_access.h"
#include "tests/data_plane/test_planes.h"

namespace runahead::net {
namespace {

using namespace std::chrono_literals;
using testing::pattern;
using testing::pump_until;

constexpr uint64_t kBytesPerToken = 64;

// The direct-write plane's one-sided side.
PeerMemory& writes(Transport& plane) {
  return *plane.peer_memory();
}

struct Endpoint {
  std::unique_ptr<Transport> plane;
  std::vector<KvBlockHeader> landed;
  std::vector<Status> failures;
};

class DirectWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hub_ = make_loopback_hub();
    sender_.plane = make("sender", true);
    receiver_.plane = make("receiver", true);
    ASSERT_TRUE(sender_.plane->connect(2, receiver_.plane->local_address()).is_ok());
  }

  std::unique_ptr<Transport> make(const std::string& name, bool enabled,
                                  std::chrono::milliseconds grace = 10s) {
    auto inner = LoopbackDataPlane::create(hub_, {name});
    EXPECT_TRUE(inner);
    auto plane =
        make_direct_write_data_plane(std::move(inner).value(), make_host_peer_memory_access(name),
                                     {.name = name, .enabled = enabled, .withdraw_grace = grace});
    EXPECT_TRUE(plane);
    return std::move(plane).value();
  }

  // The receiver places token t of layer l at (l * 16 + t) * kBytesPerToken of `region_`.
  void listen(Endpoint& endpoint, size_t misplace = 0) {
    endpoint.plane->set_block_limits({4, kBytesPerToken, 1 << 20});
    endpoint.plane->set_receiver(
        [this, misplace](const KvBlockHeader& h) -> Result<void*> {
          if (h.request_id != 7) return make_error(ErrorCode::kNotFound, "unknown request");
          return region_->data() + (h.layer * 16 + h.token_begin) * kBytesPerToken + misplace;
        },
        [&endpoint](const KvBlockHeader& h, Status status) {
          if (status.is_ok()) {
            endpoint.landed.push_back(h);
          } else {
            endpoint.failures.push_back(status);
          }
        });
  }

  KvBlockHeader block(uint32_t layer, int64_t begin, int64_t end) {
    KvBlockHeader header;
    header.request_id = 7;
    header.layer = layer;
    header.token_begin = begin;
    header.token_end = end;
    header.payload_bytes = static_cast<uint64_t>(end - begin) * kBytesPerToken;
    return header;
  }

  bool pump(const std::function<bool()>& done) {
    return pump_until({sender_.plane.get(), receiver_.plane.get()}, done, 5s);
  }

  std::shared_ptr<LoopbackHub> hub_;
  Endpoint sender_;
  Endpoint receiver_;
  std::shared_ptr<std::vector<uint8_t>> region_ =
      std::make_shared<std::vector<uint8_t>>(4 * 16 * kBytesPerToken, 0);
};

TEST_F(DirectWriteTest, BothEndsSeeTheSameDirectPath) {
  EXPECT_TRUE(writes(*sender_.plane).direct_path(receiver_.plane->local_address()));
  EXPECT_TRUE(writes(*receiver_.plane).direct_path(sender_.plane->local_address()));
  auto off = make("off", false);
  EXPECT_FALSE(writes(*off).direct_path(sender_.plane->local_address()));
  EXPECT_FALSE(writes(*sender_.plane).direct_path(off->local_address()));
  auto plain = LoopbackDataPlane::create(hub_, {"plain"});
  ASSERT_TRUE(plain);
  EXPECT_FALSE(writes(*sender_.plane).direct_path((*plain)->local_address()));
  EXPECT_FALSE(writes(*sender_.plane).direct_path({'R', 'A', 'D', 'W', 1}));  // truncated
}

TEST_F(DirectWriteTest, WrittenBlockLandsAndCompletesAtTheReceiver) {
  listen(receiver_);
  auto exposure = writes(*receiver_.plane).expose(region_->data(), region_->size(), region_);
  ASSERT_TRUE(exposure) << exposure.error().message;
  auto target = writes(*sender_.plane).open_target(2, *exposure);
  ASSERT_TRUE(target) << target.error().message;

  const KvBlockHeader header = block(2, 3, 7);
  const std::vector<uint8_t> payload = pattern(header.payload_bytes, 5);
  const size_t offset = (2 * 16 + 3) * kBytesPerToken;
  auto handle = writes(*sender_.plane).post_write(*target, offset, header, payload.data());
  ASSERT_TRUE(handle) << handle.error().message;
  ASSERT_TRUE(pump([&] { return sender_.plane->check(*handle) == SendState::kDone; }));
  ASSERT_TRUE(pump([&] { return !receiver_.landed.empty(); }));
  sender_.plane->release(*handle);

  EXPECT_EQ(receiver_.landed[0].layer, 2u);
  EXPECT_EQ(receiver_.landed[0].token_begin, 3);
  EXPECT_EQ(receiver_.landed[0].payload_bytes, header.payload_bytes);
  EXPECT_EQ(receiver_.landed[0].flags, 0u);  // the notice's marker is not seen above
  EXPECT_EQ(std::memcmp(region_->data() + offset, payload.data(), payload.size()), 0);
  EXPECT_TRUE(receiver_.failures.empty());
}

TEST_F(DirectWriteTest, BlockWrittenElsewhereThanItBelongsFailsAtTheReceiver) {
  listen(receiver_, /*misplace=*/kBytesPerToken);
  auto exposure = writes(*receiver_.plane).expose(region_->data(), region_->size(), region_);
  ASSERT_TRUE(exposure);
  auto target = writes(*sender_.plane).open_target(2, *exposure);
  ASSERT_TRUE(target);
  const KvBlockHeader header = block(0, 0, 2);
  const std::vector<uint8_t> payload = pattern(header.payload_bytes, 1);
  auto handle = writes(*sender_.plane).post_write(*target, 0, header, payload.data());
  ASSERT_TRUE(handle);
  ASSERT_TRUE(pump([&] { return !receiver_.failures.empty(); }));
  EXPECT_EQ(receiver_.failures[0].code(), ErrorCode::kProtocol);
  EXPECT_TRUE(receiver_.landed.empty());
}

TEST_F(DirectWriteTest, WritesThatDoNotFitAreRefusedAtTheSender) {
  listen(receiver_);
  auto exposure = writes(*receiver_.plane).expose(region_->data(), region_->size(), region_);
  ASSERT_TRUE(exposure);
  auto target = writes(*sender_.plane).open_target(2, *exposure);
  ASSERT_TRUE(target);
  const KvBlockHeader header = block(3, 14, 17);
  const std::vector<uint8_t> payload = pattern(header.payload_bytes, 2);
  const size_t past_end = region_->size() - kBytesPerToken;
  auto outside = writes(*sender_.plane).post_write(*target, past_end, header, payload.data());
  ASSERT_FALSE(outside);
  EXPECT_EQ(outside.error().code, ErrorCode::kOutOfRange);

  sender_.plane->set_block_limits({4, kBytesPerToken, 1 << 20});
  KvBlockHeader lying = block(0, 0, 2);
  lying.payload_bytes += 1;  // disagrees with the token range
  EXPECT_FALSE(writes(*sender_.plane).post_write(*target, 0, lying, payload.data()));
  KvBlockHeader flagged = block(0, 0, 2);
  flagged.flags = 1u << 31;
  EXPECT_FALSE(writes(*sender_.plane).post_write(*target, 0, flagged, payload.data()));
  EXPECT_FALSE(writes(*sender_.plane).post_write(*target + 100, 0, block(0, 0, 2), payload.data()));
}

TEST_F(DirectWriteTest, MalformedOrForeignExposuresAreRefused) {
  EXPECT_FALSE(writes(*sender_.plane).open_target(2, {1, 2, 3}));
  auto exposure = writes(*receiver_.plane).expose(region_->data(), region_->size(), region_);
  ASSERT_TRUE(exposure);
  EXPECT_FALSE(writes(*sender_.plane).open_target(99, *exposure));  // not a connected peer
  auto off = make("off", false);
  EXPECT_FALSE(writes(*off).expose(region_->data(), region_->size(), region_));
  ASSERT_TRUE(sender_.plane->connect(3, off->local_address()).is_ok());
  auto refused = writes(*sender_.plane).open_target(3, *exposure);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kUnsupported);
}

TEST_F(DirectWriteTest, ExposedMemoryLivesUntilTheWriterLetsGo) {
  listen(receiver_);
  std::weak_ptr<std::vector<uint8_t>> watch = region_;
  auto exposure = writes(*receiver_.plane).expose(region_->data(), region_->size(), region_);
  ASSERT_TRUE(exposure);
  region_.reset();  // only the plane holds it now
  auto target = writes(*sender_.plane).open_target(2, *exposure);
  ASSERT_TRUE(target);

  writes(*receiver_.plane).withdraw(*exposure);
  receiver_.plane->progress();
  EXPECT_FALSE(watch.expired());  // the writer still has it mapped
  writes(*sender_.plane).close_target(*target);
  ASSERT_TRUE(pump([&] { return watch.expired(); }));
}

TEST_F(DirectWriteTest, WithdrawnExposureIsReleasedAfterTheGraceWithoutTheWriter) {
  auto receiver = make("quiet receiver", true, 20ms);
  std::weak_ptr<std::vector<uint8_t>> watch = region_;
  auto exposure = writes(*receiver).expose(region_->data(), region_->size(), region_);
  ASSERT_TRUE(exposure);
  region_.reset();
  writes(*receiver).withdraw(*exposure);
  receiver->progress();
  EXPECT_FALSE(watch.expired());
  ASSERT_TRUE(pump_until(
      {receiver.get()}, [&] { return watch.expired(); }, 5s));
}

// Host peer memory that counts how often memory is mapped and unmapped.
class CountingPeerMemoryAccess final : public PeerMemoryAccess {
 public:
  CountingPeerMemoryAccess(std::unique_ptr<PeerMemoryAccess> inner, int& maps, int& unmaps)
      : inner_(std::move(inner)), maps_(maps), unmaps_(unmaps) {}
  std::string describe() const override { return inner_->describe(); }
  std::vector<uint8_t> identity() const override { return inner_->identity(); }
  bool reaches(const std::vector<uint8_t>& peer) const override { return inner_->reaches(peer); }
  Result<std::vector<uint8_t>> export_handle(void* base, size_t bytes) override {
    return inner_->export_handle(base, bytes);
  }
  Result<void*> map(const std::vector<uint8_t>& handle) override {
    ++maps_;
    return inner_->map(handle);
  }
  void unmap(void* mapped) override {
    ++unmaps_;
    inner_->unmap(mapped);
  }
  Status copy_async(void* dst, const void* src, size_t bytes,
                    std::function<void(Status)> done) override {
    return inner_->copy_async(dst, src, bytes, std::move(done));
  }

 private:
  std::unique_ptr<PeerMemoryAccess> inner_;
  int& maps_;
  int& unmaps_;
};

TEST_F(DirectWriteTest, ReusedRegionKeepsItsMappingAndIdleMappingsAreBounded) {
  int maps = 0;
  int unmaps = 0;
  auto inner = LoopbackDataPlane::create(hub_, {"counting sender"});
  ASSERT_TRUE(inner);
  auto sender = make_direct_write_data_plane(
      std::move(inner).value(),
      std::make_unique<CountingPeerMemoryAccess>(make_host_peer_memory_access("counting sender"),
                                                 maps, unmaps),
      {.name = "counting sender"});
  ASSERT_TRUE(sender);
  ASSERT_TRUE((*sender)->connect(2, receiver_.plane->local_address()).is_ok());
  // The same cache exposed for three requests in turn: mapped once.
  for (int request = 0; request < 3; ++request) {
    auto exposure = writes(*receiver_.plane).expose(region_->data(), region_->size(), region_);
    ASSERT_TRUE(exposure);
    auto target = writes(**sender).open_target(2, *exposure);
    ASSERT_TRUE(target);
    writes(**sender).close_target(*target);
    writes(*receiver_.plane).withdraw(*exposure);
  }
  EXPECT_EQ(maps, 1);
  EXPECT_EQ(unmaps, 0);
  // Eight different caches: only the four most recently used idle mappings stay.
  std::vector<std::shared_ptr<std::vector<uint8_t>>> caches;
  for (int i = 0; i < 8; ++i) {
    caches.push_back(std::make_shared<std::vector<uint8_t>>(4096));
    auto exposure = writes(*receiver_.plane).expose(caches.back()->data(), 4096, caches.back());
    ASSERT_TRUE(exposure);
    auto target = writes(**sender).open_target(2, *exposure);
    ASSERT_TRUE(target);
    writes(**sender).close_target(*target);
  }
  EXPECT_EQ(maps, 9);
  EXPECT_EQ(unmaps, 5);
}

}  // namespace
}  // namespace runahead::net
