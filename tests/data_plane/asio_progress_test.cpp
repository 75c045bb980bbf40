// Driving a data plane from an Asio loop, the way a worker's I/O thread does: wait for the
// event fd to become readable when arm() allows it, progress otherwise, and on a timer.
#include <asio.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "tests/data_plane/test_planes.h"

namespace runahead::net {
namespace {

using testing::all_plane_kinds;
using testing::pattern;
using testing::PlaneFactory;
using testing::PlaneKind;

// Progresses one plane from an io_context: fd readiness plus a periodic tick.
class AsioDriver {
 public:
  AsioDriver(asio::io_context& io, Transport& plane)
      : plane_(plane), fd_(io, plane.event_fd()), tick_(io) {}
  ~AsioDriver() { fd_.release(); }  // the plane owns its fd

  void start() {
    wait();
    schedule_tick();
  }
  void stop() {
    stopped_ = true;
    fd_.cancel();
    tick_.cancel();
  }
  int wakeups() const { return wakeups_; }

 private:
  void wait() {
    if (stopped_) return;
    if (!plane_.arm()) {
      // Work is pending: progress, then come back through the loop so other handlers
      // (the peer's, in this test) run too rather than being starved by a spin here.
      plane_.progress();
      asio::post(fd_.get_executor(), [this] { wait(); });
      return;
    }
    fd_.async_wait(asio::posix::stream_descriptor::wait_read, [this](std::error_code error) {
      if (error || stopped_) return;
      ++wakeups_;
      plane_.progress();
      wait();
    });
  }
  void schedule_tick() {
    tick_.expires_after(std::chrono::milliseconds(100));
    tick_.async_wait([this](std::error_code error) {
      if (error || stopped_) return;
      plane_.progress();
      schedule_tick();
    });
  }

  Transport& plane_;
  asio::posix::stream_descriptor fd_;
  asio::steady_timer tick_;
  bool stopped_ = false;
  int wakeups_ = 0;
};

class AsioProgressTest : public ::testing::TestWithParam<PlaneKind> {};

TEST_P(AsioProgressTest, BlocksFlowWithBothEndsDrivenByAsio) {
  PlaneFactory factory(GetParam());
  auto sender = factory.make("asio-sender");
  auto receiver = factory.make("asio-receiver");
  ASSERT_TRUE(sender.is_ok() && receiver.is_ok());
  ASSERT_TRUE((*sender)->connect(2, (*receiver)->local_address()).is_ok());

  constexpr uint64_t kBpt = 1024;
  constexpr int kBlocks = 8;
  std::vector<uint8_t> cache(kBlocks * 256 * kBpt, 0);
  const std::vector<uint8_t> source = pattern(cache.size(), 21);
  int landed = 0;
  (*receiver)->set_block_limits(
      BlockLimits{.n_layers = 1, .bytes_per_token = kBpt, .max_block_bytes = cache.size()});
  (*receiver)->set_receiver(
      [&](const KvBlockHeader& h) -> Result<void*> {
        return static_cast<void*>(cache.data() + h.token_begin * kBpt);
      },
      [&](const KvBlockHeader&, Status s) {
        EXPECT_TRUE(s.is_ok()) << s.to_string();
        ++landed;
      });

  asio::io_context io;
  AsioDriver send_driver(io, **sender);
  AsioDriver receive_driver(io, **receiver);
  std::vector<SendHandle> handles;
  asio::post(io, [&] {
    for (int i = 0; i < kBlocks; ++i) {
      // Alternate small (eager) and 256 KiB blocks.
      const int64_t begin = i * 256;
      const int64_t end = begin + (i % 2 == 0 ? 4 : 256);
      const KvBlockHeader header{.request_id = 1,
                                 .layer = 0,
                                 .flags = 0,
                                 .token_begin = begin,
                                 .token_end = end,
                                 .payload_bytes = static_cast<uint64_t>(end - begin) * kBpt};
      auto handle = (*sender)->post_send(2, header, source.data() + begin * kBpt);
      ASSERT_TRUE(handle.is_ok()) << handle.status().to_string();
      handles.push_back(*handle);
    }
  });
  send_driver.start();
  receive_driver.start();
  asio::steady_timer watchdog(io);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::function<void()> check = [&] {
    bool sends_done = handles.size() == kBlocks;
    for (SendHandle h : handles) sends_done = sends_done && (*sender)->check(h) == SendState::kDone;
    if ((landed == kBlocks && sends_done) || std::chrono::steady_clock::now() > deadline) {
      send_driver.stop();
      receive_driver.stop();
      return;
    }
    watchdog.expires_after(std::chrono::milliseconds(5));
    watchdog.async_wait([&](std::error_code) { check(); });
  };
  check();
  io.run();

  EXPECT_EQ(landed, kBlocks);
  EXPECT_GE(receive_driver.wakeups(), 1) << "the receiver never woke on its event fd";
  for (int i = 0; i < kBlocks; ++i) {
    const size_t begin = static_cast<size_t>(i) * 256 * kBpt;
    const size_t bytes = (i % 2 == 0 ? 4 : 256) * kBpt;
    EXPECT_EQ(std::memcmp(cache.data() + begin, source.data() + begin, bytes), 0) << "block " << i;
  }
}

std::string plane_name(const ::testing::TestParamInfo<PlaneKind>& param) {
  return param.param.label;
}

INSTANTIATE_TEST_SUITE_P(AllPlanes, AsioProgressTest, ::testing::ValuesIn(all_plane_kinds()),
                         plane_name);

}  // namespace
}  // namespace runahead::net
