#include "tests/cuda/twin_tensor.h"

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace runahead::testing {

void CudaTest::SetUp() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string name = std::string(info->test_suite_name()) + "." + info->name();
  const char* forced = std::getenv("RUNAHEAD_TEST_SEED");
  // FNV-1a of the name: stable across runs and machines, unlike std::hash.
  uint64_t seed = 1469598103934665603ull;
  for (char ch : name) seed = (seed ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
  if (forced != nullptr && *forced != '\0') seed = std::strtoull(forced, nullptr, 10);
  rng_.seed(seed);
  std::printf("[ seed     ] %s: %llu (RUNAHEAD_TEST_SEED replays it)\n", name.c_str(),
              static_cast<unsigned long long>(seed));
  auto gpu = CudaBackend::create(0);
  if (!gpu) GTEST_SKIP() << "no CUDA device: " << gpu.error().message;
  gpu_ = std::move(gpu).value();
  cpu_ = make_cpu_backend();
}

TwinMatrix make_twin(Backend& cpu, CudaBackend& gpu, int64_t rows, int64_t cols,
                     std::mt19937_64& rng, float scale, float offset, int64_t stride,
                     DType gpu_dtype) {
  if (stride == 0) stride = cols;
  TwinMatrix twin;
  twin.values.resize(static_cast<size_t>(rows * cols));
  std::uniform_real_distribution<float> dist(-scale, scale);
  for (float& x : twin.values) x = bf16_to_f32(f32_to_bf16(offset + dist(rng)));

  const size_t cpu_bytes = static_cast<size_t>(std::max<int64_t>(rows, 1) * stride) * 4;
  auto cpu_buffer = cpu.allocate(cpu_bytes);
  EXPECT_TRUE(cpu_buffer.is_ok());
  twin.cpu_buffer = std::move(cpu_buffer).value();
  twin.cpu = Tensor{twin.cpu_buffer.data(), DType::kF32, rows, cols, stride};
  EXPECT_TRUE(cpu.copy_from_host(twin.values.data(), twin.cpu).is_ok());

  const size_t gpu_bytes =
      static_cast<size_t>(std::max<int64_t>(rows, 1) * stride) * dtype_size(gpu_dtype);
  auto gpu_buffer = gpu.allocate(gpu_bytes);
  EXPECT_TRUE(gpu_buffer.is_ok());
  twin.gpu_buffer = std::move(gpu_buffer).value();
  twin.gpu = Tensor{twin.gpu_buffer.data(), gpu_dtype, rows, cols, stride};
  poison(gpu, twin);
  if (gpu_dtype == DType::kF32) {
    EXPECT_TRUE(gpu.copy_from_host(twin.values.data(), twin.gpu).is_ok());
  } else {
    std::vector<uint16_t> narrow(twin.values.size());
    convert_from_f32(twin.values.data(), gpu_dtype, narrow.data(), narrow.size());
    EXPECT_TRUE(gpu.copy_from_host(narrow.data(), twin.gpu).is_ok());
  }
  EXPECT_TRUE(gpu.synchronize().is_ok());
  return twin;
}

void poison(CudaBackend& gpu, const TwinMatrix& twin) {
  EXPECT_EQ(cudaMemsetAsync(twin.gpu_buffer.data(), 0xff, twin.gpu_buffer.bytes(), gpu.stream()),
            cudaSuccess);
}

std::vector<float> read_cpu(Backend& cpu, const Tensor& t) {
  std::vector<float> values(static_cast<size_t>(t.elements()));
  EXPECT_TRUE(cpu.copy_to_host(t, values.data()).is_ok());
  return values;
}

std::vector<float> read_gpu(CudaBackend& gpu, const Tensor& t) {
  std::vector<float> values(static_cast<size_t>(t.elements()));
  if (t.dtype == DType::kF32) {
    const Status status = gpu.copy_to_host(t, values.data());
    EXPECT_TRUE(status.is_ok()) << status.to_string();
    return values;
  }
  std::vector<uint16_t> narrow(values.size());
  const Status status = gpu.copy_to_host(t, narrow.data());
  EXPECT_TRUE(status.is_ok()) << status.to_string();
  convert_to_f32(t.dtype, narrow.data(), values.data(), values.size());
  return values;
}

double compare(Backend& cpu, CudaBackend& gpu, const TwinMatrix& twin, const std::string& what) {
  const std::vector<float> want = read_cpu(cpu, twin.cpu);
  const std::vector<float> got = read_gpu(gpu, twin.gpu);
  const RowError worst = worst_row_error(got, want, twin.cpu.cols);
  std::printf("[ rel-err  ] %-48s row %.3e (row %lld), L2 %.3e\n", what.c_str(), worst.error,
              static_cast<long long>(worst.row), relative_error(got, want));
  return worst.error;
}

}  // namespace runahead::testing
