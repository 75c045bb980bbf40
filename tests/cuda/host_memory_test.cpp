// Page-locked host memory from the CUDA backend: what allocate_host returns, copies from and to
// it, and the promise that a copy's source may be reused as soon as copy_from_host returns.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cstring>
#include <vector>

#include "tests/cuda/twin_tensor.h"

namespace runahead {
namespace {

class HostMemoryTest : public testing::CudaTest {};

TEST_F(HostMemoryTest, AllocateHostIsPageLocked) {
  auto buffer = gpu_->allocate_host(size_t{3} << 20);
  ASSERT_TRUE(buffer.is_ok()) << buffer.error().to_string();
  EXPECT_EQ(buffer->bytes(), size_t{3} << 20);
  cudaPointerAttributes attributes{};
  ASSERT_EQ(cudaPointerGetAttributes(&attributes, buffer->data()), cudaSuccess);
  EXPECT_EQ(attributes.type, cudaMemoryTypeHost);
}

TEST_F(HostMemoryTest, OversizedHostAllocationNamesDeviceAndSize) {
  const size_t huge = size_t{1} << 50;
  auto buffer = gpu_->allocate_host(huge);
  ASSERT_FALSE(buffer.is_ok());
  EXPECT_EQ(buffer.error().code, ErrorCode::kResourceExhausted);
  EXPECT_NE(buffer.error().message.find(gpu_->name()), std::string::npos) << buffer.error().message;
  EXPECT_NE(buffer.error().message.find(std::to_string(huge)), std::string::npos)
      << buffer.error().message;
  EXPECT_TRUE(gpu_->allocate_host(4096).is_ok());
  EXPECT_TRUE(gpu_->synchronize().is_ok());
}

TEST_F(HostMemoryTest, PageLockedSourceMayBeReusedWhenCopyReturns) {
  // Long work queued ahead of the copy delays its DMA; overwriting the source at once must not
  // reach the device.
  const int64_t rows = 8192;
  const int64_t cols = 8192;  // 128 MiB of bf16
  const size_t bytes = static_cast<size_t>(rows * cols) * 2;
  auto busy = gpu_->allocate(size_t{2} << 30);
  auto device = gpu_->allocate(bytes);
  auto source = gpu_->allocate_host(bytes);
  auto back = gpu_->allocate_host(bytes);
  ASSERT_TRUE(busy.is_ok() && device.is_ok() && source.is_ok() && back.is_ok());
  auto* values = static_cast<uint16_t*>(source->data());
  for (size_t i = 0; i < bytes / 2; ++i) values[i] = static_cast<uint16_t>(0x3c00 + i % 251);

  for (int repeat = 0; repeat < 3; ++repeat) {
    ASSERT_TRUE(
        gpu_->fill_uniform(busy->view(DType::kF32, 1 << 15, 1 << 14), 1, 1.0f, 0.0f).is_ok());
    ASSERT_TRUE(
        gpu_->copy_from_host(source->data(), device->view(DType::kBF16, rows, cols)).is_ok());
    std::vector<uint16_t> kept(values, values + bytes / 2);
    std::memset(source->data(), 0xff, bytes);
    ASSERT_TRUE(gpu_->copy_to_host(device->view(DType::kBF16, rows, cols), back->data()).is_ok());
    EXPECT_EQ(std::memcmp(back->data(), kept.data(), bytes), 0) << "repeat " << repeat;
    std::memcpy(source->data(), kept.data(), bytes);
  }
}

TEST_F(HostMemoryTest, PageLockedCopiesHonorStrides) {
  const int64_t rows = 37;
  const int64_t cols = 45;
  const int64_t stride = 64;
  auto device = gpu_->allocate(static_cast<size_t>(rows * stride) * 4);
  auto source = gpu_->allocate_host(static_cast<size_t>(rows * cols) * 4);
  auto back = gpu_->allocate_host(static_cast<size_t>(rows * cols) * 4);
  ASSERT_TRUE(device.is_ok() && source.is_ok() && back.is_ok());
  auto* values = static_cast<float*>(source->data());
  for (int64_t i = 0; i < rows * cols; ++i) values[i] = static_cast<float>(i) * 0.5f - 7.0f;
  const Tensor strided{device->data(), DType::kF32, rows, cols, stride};
  ASSERT_TRUE(gpu_->copy_from_host(source->data(), strided).is_ok());
  ASSERT_TRUE(gpu_->copy_to_host(strided, back->data()).is_ok());
  EXPECT_EQ(std::memcmp(back->data(), source->data(), static_cast<size_t>(rows * cols) * 4), 0);
}

}  // namespace
}  // namespace runahead
