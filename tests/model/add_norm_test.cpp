// The CPU backend's fused residual add + norm against the separate operations and a
// double-precision reference, on contiguous and strided rows.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/backend.h"

namespace runahead {
namespace {

// A rows x cols f32 matrix, rows `stride` apart, uniform in [offset - scale, offset + scale].
struct Matrix {
  Buffer buffer;
  Tensor t;
};

Matrix make_matrix(Backend& cpu, int64_t rows, int64_t cols, int64_t stride, std::mt19937_64& rng,
                   float scale = 1.0f, float offset = 0.0f) {
  Matrix m;
  auto buffer = cpu.allocate(static_cast<size_t>(rows * stride) * sizeof(float));
  EXPECT_TRUE(buffer.is_ok());
  m.buffer = std::move(buffer).value();
  m.t = Tensor{m.buffer.data(), DType::kF32, rows, cols, stride};
  std::uniform_real_distribution<float> dist(offset - scale, offset + scale);
  auto* all = static_cast<float*>(m.buffer.data());
  for (int64_t i = 0; i < rows * stride; ++i) all[i] = dist(rng);
  return m;
}

std::vector<float> rows_of(const Tensor& t) {
  std::vector<float> out;
  for (int64_t r = 0; r < t.rows; ++r)
    out.insert(out.end(), t.row<float>(r), t.row<float>(r) + t.cols);
  return out;
}

class AddNormTest : public ::testing::Test {
 protected:
  std::unique_ptr<Backend> cpu_ = make_cpu_backend();
  std::mt19937_64 rng_{std::random_device{}()};
};

TEST_F(AddNormTest, AddRmsNormEqualsAddThenRmsNorm) {
  for (auto [rows, cols, stride] :
       {std::tuple<int64_t, int64_t, int64_t>{33, 256, 256}, {5, 36, 41}, {1, 4096, 4096}}) {
    SCOPED_TRACE(std::to_string(rows) + "x" + std::to_string(cols) + " stride " +
                 std::to_string(stride));
    Matrix residual = make_matrix(*cpu_, rows, cols, stride, rng_, 2.0f);
    Matrix copy = make_matrix(*cpu_, rows, cols, stride, rng_);
    cpu_->copy(residual.t, copy.t);
    Matrix delta = make_matrix(*cpu_, rows, cols, cols, rng_);
    Matrix weight = make_matrix(*cpu_, 1, cols, cols, rng_, 0.1f, 1.0f);
    Matrix fused = make_matrix(*cpu_, rows, cols, stride, rng_);
    Matrix separate = make_matrix(*cpu_, rows, cols, stride, rng_);
    const std::vector<float> before = rows_of(residual.t);

    cpu_->add_rms_norm(residual.t, delta.t, weight.t, 1e-5f, fused.t);
    cpu_->add(copy.t, delta.t, copy.t);
    cpu_->rms_norm(copy.t, weight.t, 1e-5f, separate.t);
    EXPECT_EQ(rows_of(residual.t), rows_of(copy.t));
    EXPECT_EQ(rows_of(fused.t), rows_of(separate.t));

    // Independently: in double precision from the inputs.
    const std::vector<float> d = rows_of(delta.t);
    const std::vector<float> got = rows_of(fused.t);
    double worst = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      double sum_squares = 0.0;
      for (int64_t i = 0; i < cols; ++i) {
        const double h = double{before[r * cols + i]} + d[r * cols + i];
        sum_squares += h * h;
      }
      const double inv_rms = 1.0 / std::sqrt(sum_squares / static_cast<double>(cols) + 1e-5);
      for (int64_t i = 0; i < cols; ++i) {
        const double h = double{before[r * cols + i]} + d[r * cols + i];
        const double want = weight.t.as<float>()[i] * h * inv_rms;
        worst = std::max(worst, std::abs(got[r * cols + i] - want));
      }
    }
    EXPECT_LT(worst, 1e-5);
  }
}

TEST_F(AddNormTest, AddLayerNormEqualsAddThenLayerNorm) {
  for (bool with_bias : {true, false}) {
    SCOPED_TRACE(with_bias ? "bias" : "no bias");
    const int64_t rows = 17;
    const int64_t cols = 454;
    const int64_t stride = 460;
    Matrix residual = make_matrix(*cpu_, rows, cols, stride, rng_, 2.0f, 0.5f);
    Matrix copy = make_matrix(*cpu_, rows, cols, stride, rng_);
    cpu_->copy(residual.t, copy.t);
    Matrix delta = make_matrix(*cpu_, rows, cols, stride, rng_);
    Matrix weight = make_matrix(*cpu_, 1, cols, cols, rng_, 0.1f, 1.0f);
    Matrix bias = make_matrix(*cpu_, 1, cols, cols, rng_, 0.1f);
    Matrix fused = make_matrix(*cpu_, rows, cols, cols, rng_);
    Matrix separate = make_matrix(*cpu_, rows, cols, cols, rng_);
    const Tensor b = with_bias ? bias.t : Tensor{};
    const std::vector<float> before = rows_of(residual.t);

    cpu_->add_layer_norm(residual.t, delta.t, weight.t, b, 1e-5f, fused.t);
    cpu_->add(copy.t, delta.t, copy.t);
    cpu_->layer_norm(copy.t, weight.t, b, 1e-5f, separate.t);
    EXPECT_EQ(rows_of(residual.t), rows_of(copy.t));
    EXPECT_EQ(rows_of(fused.t), rows_of(separate.t));

    const std::vector<float> d = rows_of(delta.t);
    const std::vector<float> got = rows_of(fused.t);
    double worst = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      double mean = 0.0;
      for (int64_t i = 0; i < cols; ++i) mean += double{before[r * cols + i]} + d[r * cols + i];
      mean /= static_cast<double>(cols);
      double variance = 0.0;
      for (int64_t i = 0; i < cols; ++i) {
        const double h = double{before[r * cols + i]} + d[r * cols + i] - mean;
        variance += h * h;
      }
      variance /= static_cast<double>(cols);
      for (int64_t i = 0; i < cols; ++i) {
        const double h = double{before[r * cols + i]} + d[r * cols + i];
        const double want = (h - mean) / std::sqrt(variance + 1e-5) * weight.t.as<float>()[i] +
                            (with_bias ? bias.t.as<float>()[i] : 0.0f);
        worst = std::max(worst, std::abs(got[r * cols + i] - want));
      }
    }
    EXPECT_LT(worst, 1e-5);
  }
}

}  // namespace
}  // namespace runahead
