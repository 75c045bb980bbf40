// Host staging buffers are reused across requests instead of being allocated (pinned, slowly)
// for each one.
#include <gtest/gtest.h>

#include "actors/host_staging_pool.h"
#include "kernels/backend_factory.h"

namespace runahead {
namespace {

TEST(HostStagingPoolTest, ReleasedBufferIsReusedForRequestsItCovers) {
  auto backend = make_backend("cpu");
  ASSERT_TRUE(backend);
  HostStagingPool pool(**backend);
  void* first = nullptr;
  {
    auto buffer = pool.take(1 << 20);
    ASSERT_TRUE(buffer);
    first = buffer->data();
    EXPECT_EQ(buffer->bytes(), size_t{1} << 20);
  }
  EXPECT_EQ(pool.idle_count(), 1u);
  auto smaller = pool.take(1000);
  ASSERT_TRUE(smaller);
  EXPECT_EQ(smaller->data(), first);  // the idle megabyte covers it
  EXPECT_EQ(pool.idle_count(), 0u);
  auto larger = pool.take(2 << 20);
  ASSERT_TRUE(larger);
  EXPECT_NE(larger->data(), first);
}

TEST(HostStagingPoolTest, KeepsAtMostMaxIdleBuffers) {
  auto backend = make_backend("cpu");
  ASSERT_TRUE(backend);
  HostStagingPool pool(**backend, 2);
  {
    auto a = pool.take(100);
    auto b = pool.take(200);
    auto c = pool.take(300);
    ASSERT_TRUE(a && b && c);
  }
  EXPECT_EQ(pool.idle_count(), 2u);
  auto big = pool.take(300);  // the largest idle one was kept
  ASSERT_TRUE(big);
  EXPECT_EQ(pool.idle_count(), 1u);
}

TEST(HostStagingPoolTest, BufferMayOutliveThePool) {
  auto backend = make_backend("cpu");
  ASSERT_TRUE(backend);
  Buffer kept;
  {
    HostStagingPool pool(**backend);
    auto buffer = pool.take(4096);
    ASSERT_TRUE(buffer);
    kept = std::move(buffer).value();
  }
  static_cast<char*>(kept.data())[4095] = 1;  // still valid; freed when released (ASan/valgrind)
  kept.reset();
}

}  // namespace
}  // namespace runahead
