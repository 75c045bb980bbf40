#include "bench/tsp/link_wait.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>

namespace runahead::tsp {
namespace {

class LinkWaitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int devices = 0;
    const cudaError_t error = cudaGetDeviceCount(&devices);
    if (error != cudaSuccess || devices == 0) {
      GTEST_SKIP() << "no CUDA device: "
                   << (error != cudaSuccess ? cudaGetErrorString(error) : "none found");
    }
    ASSERT_EQ(cudaStreamCreate(&stream_), cudaSuccess);
    ASSERT_EQ(cudaEventCreate(&start_), cudaSuccess);
    ASSERT_EQ(cudaEventCreate(&stop_), cudaSuccess);
  }
  void TearDown() override {
    if (stop_) cudaEventDestroy(stop_);
    if (start_) cudaEventDestroy(start_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  // Milliseconds between events recorded on the stream before and after a wait of `ns`.
  float timed_wait_ms(int64_t ns) {
    EXPECT_EQ(cudaEventRecord(start_, stream_), cudaSuccess);
    EXPECT_EQ(launch_link_wait(ns, stream_), cudaSuccess);
    EXPECT_EQ(cudaEventRecord(stop_, stream_), cudaSuccess);
    EXPECT_EQ(cudaEventSynchronize(stop_), cudaSuccess);
    float ms = -1.0f;
    EXPECT_EQ(cudaEventElapsedTime(&ms, start_, stop_), cudaSuccess);
    return ms;
  }

  cudaStream_t stream_ = nullptr;
  cudaEvent_t start_ = nullptr;
  cudaEvent_t stop_ = nullptr;
};

TEST_F(LinkWaitTest, HoldsTheStreamForTheRequestedTime) {
  timed_wait_ms(1'000);  // the first launch loads the module
  for (const double ms : {0.5, 5.0, 40.0}) {
    const float took = timed_wait_ms(static_cast<int64_t>(ms * 1e6));
    EXPECT_GE(took, ms * 0.999) << "wait of " << ms << " ms";
    EXPECT_LE(took, ms * 1.02 + 0.1) << "wait of " << ms << " ms";
  }
}

TEST_F(LinkWaitTest, TheHostSeesTheWaitToo) {
  const auto begin = std::chrono::steady_clock::now();
  ASSERT_EQ(launch_link_wait(20'000'000, stream_), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin).count();
  EXPECT_GE(ms, 20.0 * 0.999);
}

TEST_F(LinkWaitTest, NoWaitForZeroOrNegativeTimes) {
  timed_wait_ms(1'000);
  EXPECT_LT(timed_wait_ms(0), 0.5f);
  EXPECT_LT(timed_wait_ms(-5'000'000), 0.5f);
}

}  // namespace
}  // namespace runahead::tsp
