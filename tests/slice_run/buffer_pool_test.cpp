// Host staging buffers are reused across requests instead of being allocated (pinned, slowly)
// for each one.
#include <gtest/gtest.h>

#include "actors/buffer_pool.h"
#include "kernels/backend_factory.h"

namespace runahead {
namespace {

TEST(BufferPoolTest, ReleasedBufferIsReusedForRequestsItCovers) {
  auto backend = make_backend("cpu");
  ASSERT_TRUE(backend);
  BufferPool pool([&](size_t bytes) { return (*backend)->allocate_host(bytes); });
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

TEST(BufferPoolTest, KeepsAtMostMaxIdleBuffers) {
  auto backend = make_backend("cpu");
  ASSERT_TRUE(backend);
  BufferPool pool([&](size_t bytes) { return (*backend)->allocate_host(bytes); }, 2);
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

TEST(BufferPoolTest, BufferMayOutliveThePool) {
  auto backend = make_backend("cpu");
  ASSERT_TRUE(backend);
  Buffer kept;
  {
    BufferPool pool([&](size_t bytes) { return (*backend)->allocate_host(bytes); });
    auto buffer = pool.take(4096);
    ASSERT_TRUE(buffer);
    kept = std::move(buffer).value();
  }
  static_cast<char*>(kept.data())[4095] = 1;  // still valid; freed when released (ASan/valgrind)
  kept.reset();
}

TEST(BufferPoolTest, FailedAllocationFreesIdleBuffersAndTriesAgain) {
  auto backend = make_backend("cpu");
  ASSERT_TRUE(backend);
  // A device with room for 1000 bytes in all.
  size_t in_use = 0;
  BufferPool pool(
      [&](size_t bytes) -> Result<Buffer> {
        if (in_use + bytes > 1000) return make_error(ErrorCode::kResourceExhausted, "full");
        in_use += bytes;
        auto buffer = (*backend)->allocate_host(bytes);
        if (!buffer) return buffer.status();
        void* data = buffer->data();
        auto owner = std::make_shared<Buffer>(std::move(buffer).value());
        return Buffer(data, bytes, [&in_use, owner, bytes](void*) { in_use -= bytes; });
      },
      2, 100);
  {
    auto first = pool.take(550);  // rounded to 600, then idle
    ASSERT_TRUE(first);
  }
  EXPECT_EQ(pool.idle_count(), 1u);
  auto larger = pool.take(700);  // does not fit next to the idle 600
  ASSERT_TRUE(larger) << larger.error().message;
  EXPECT_EQ(pool.idle_count(), 0u);
  EXPECT_EQ(in_use, 700u);
}

}  // namespace
}  // namespace runahead
