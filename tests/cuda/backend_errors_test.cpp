// Bad input to the CUDA backend: clear errors that name the device and the operation.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include "kernels/backend_factory.h"
#include "tests/cuda/twin_tensor.h"

namespace runahead {
namespace {

class CudaErrorsTest : public testing::CudaTest {};

TEST_F(CudaErrorsTest, MissingDeviceIsRefusedByName) {
  auto backend = make_backend("cuda:999");
  ASSERT_FALSE(backend.is_ok());
  EXPECT_NE(backend.error().message.find("cuda:999"), std::string::npos) << backend.error().message;
}

TEST_F(CudaErrorsTest, OversizedAllocationFailsAndBackendStaysUsable) {
  auto huge = gpu_->allocate(size_t{1} << 50);
  ASSERT_FALSE(huge.is_ok());
  EXPECT_EQ(huge.error().code, ErrorCode::kResourceExhausted);
  EXPECT_NE(huge.error().message.find(gpu_->name()), std::string::npos) << huge.error().message;
  auto small = gpu_->allocate(1024);
  EXPECT_TRUE(small.is_ok());
  EXPECT_TRUE(gpu_->synchronize().is_ok());
}

TEST_F(CudaErrorsTest, FailedCopyIsReportedAndSticky) {
  auto buffer = gpu_->allocate(256);
  ASSERT_TRUE(buffer.is_ok());
  // A device-to-device copy from a host address the GPU cannot read; rows of 31 elements take
  // the copy engine's path, which refuses the address up front (a kernel would fault instead,
  // and a fault ends the whole CUDA context of this test process).
  static char not_device_memory[256];
  Tensor bogus{not_device_memory, DType::kBF16, 4, 31, 31};
  Tensor dst = buffer->view(DType::kBF16, 4, 31);
  gpu_->copy(bogus, dst);
  const Status first = gpu_->synchronize();
  if (first.is_ok()) GTEST_SKIP() << "this system lets the GPU read pageable host memory";
  EXPECT_NE(first.message().find("copy"), std::string::npos) << first.message();
  EXPECT_FALSE(gpu_->synchronize().is_ok());
}

}  // namespace
}  // namespace runahead
