// The same random matrix on the CPU backend (fp32) and the CUDA backend (bf16), for comparing
// a kernel with the reference on identical inputs.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "tests/support/numeric.h"

namespace runahead::testing {

// Creates both backends in SetUp; skips every case when there is no usable GPU. rng_ is seeded
// from the test's full name (or RUNAHEAD_TEST_SEED), and the seed is printed, so a failure
// replays with the same inputs.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override;

  std::unique_ptr<CudaBackend> gpu_;
  std::unique_ptr<Backend> cpu_;
  std::mt19937_64 rng_;
};

struct TwinMatrix {
  std::vector<float> values;  // host copy, already rounded to bf16
  Buffer cpu_buffer;
  Buffer gpu_buffer;
  Tensor cpu;  // f32
  Tensor gpu;  // bf16 (or f32 when asked)
};

// A rows x cols matrix of values uniform in [offset - scale, offset + scale], rows `stride`
// elements apart (stride 0: contiguous). The GPU buffer's padding is poisoned (NaN).
TwinMatrix make_twin(Backend& cpu, CudaBackend& gpu, int64_t rows, int64_t cols,
                     std::mt19937_64& rng, float scale = 1.0f, float offset = 0.0f,
                     int64_t stride = 0, DType gpu_dtype = DType::kBF16);

// Fills the whole GPU buffer with NaN (bf16 and f32 all-ones bits) so unwritten outputs show.
void poison(CudaBackend& gpu, const TwinMatrix& twin);

// The matrix read back from each backend, as floats.
std::vector<float> read_cpu(Backend& cpu, const Tensor& t);
std::vector<float> read_gpu(CudaBackend& gpu, const Tensor& t);

// Compares the two sides of `twin` row by row: prints the worst row's error (max |gpu - cpu|
// over the row's max |cpu|, tests/support/numeric.h) and the L2 relative error under `what`,
// and returns the worst row's error.
double compare(Backend& cpu, CudaBackend& gpu, const TwinMatrix& twin, const std::string& what);

}  // namespace runahead::testing
