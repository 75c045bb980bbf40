// A real kernel fault on the GPU: the first check reports it as a device error naming the
// device, the operation and CUDA's error, and every later check reports it too (the error is
// sticky), so a worker fails its request and leaves instead of computing on garbage.
//
// A fault ends the CUDA context of the process it happens in, so it happens in a child: gtest's
// "threadsafe" death test runs this one test again in a fresh process of this binary.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "kernels/cuda/cuda_backend.h"
#include "tests/cuda/faulting_kernel.h"

namespace runahead {
namespace {

// Runs in the child; its exit code says which expectation failed (0: all held).
[[noreturn]] void fault_and_check() {
  auto created = CudaBackend::create(0);
  if (!created) _exit(10);
  CudaBackend& gpu = **created;
  auto buffer = gpu.allocate(4096);
  if (!buffer) _exit(11);
  if (testing::launch_faulting_kernel(gpu.stream()) != cudaSuccess) _exit(12);
  const Status first = gpu.synchronize();
  std::fprintf(stderr, "first check: %s\n", first.to_string().c_str());
  if (first.is_ok()) _exit(13);
  if (first.code() != ErrorCode::kDevice) _exit(14);
  const std::string& message = first.message();
  if (message.find("cuda:0") == std::string::npos) _exit(15);       // the device
  if (message.find("synchronize") == std::string::npos) _exit(16);  // the operation
  if (message.find("cudaError") == std::string::npos) _exit(17);    // CUDA's error by name
  // Sticky: the next copy and the next synchronize fail too, as device errors.
  char host[16];
  const Status copy = gpu.copy_to_host(buffer->view(DType::kBF16, 1, 8), host);
  std::fprintf(stderr, "copy after it: %s\n", copy.to_string().c_str());
  if (copy.is_ok() || copy.code() != ErrorCode::kDevice) _exit(18);
  const Status again = gpu.synchronize();
  if (again.is_ok() || again.code() != ErrorCode::kDevice) _exit(19);
  std::fflush(stderr);
  _exit(0);
}

TEST(CudaKernelFaultTest, FaultIsADeviceErrorNamedAndSticky) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    cudaGetLastError();
    GTEST_SKIP() << "no CUDA device";
  }
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(fault_and_check(), ::testing::ExitedWithCode(0), "first check: .*cudaError");
}

}  // namespace
}  // namespace runahead
