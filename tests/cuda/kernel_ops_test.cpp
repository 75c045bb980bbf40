// Each element-wise, normalization and matrix kernel of the CUDA backend against the fp32 CPU
// backend on fresh random inputs (bf16-rounded on both sides), with poisoned outputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "kernels/cuda/matmul.h"
#include "model/transformer.h"
#include "tests/cuda/twin_tensor.h"

namespace runahead {
namespace {

using testing::compare;
using testing::make_twin;
using testing::TwinMatrix;

constexpr double kBf16Tolerance = 1e-2;

class CudaKernelTest : public testing::CudaTest {};

TEST_F(CudaKernelTest, EmbedGathersRows) {
  TwinMatrix table = make_twin(*cpu_, *gpu_, 301, 136, rng_);
  TwinMatrix out = make_twin(*cpu_, *gpu_, 77, 136, rng_);
  std::uniform_int_distribution<int32_t> id(0, 300);
  std::vector<int32_t> tokens(77);
  for (auto& t : tokens) t = id(rng_);
  testing::poison(*gpu_, out);
  cpu_->embed(table.cpu, tokens.data(), out.cpu);
  gpu_->embed(table.gpu, tokens.data(), out.gpu);
  // A gather copies bf16 values exactly.
  EXPECT_EQ(compare(*cpu_, *gpu_, out, "embed 77 of 301 x 136"), 0.0);
}

TEST_F(CudaKernelTest, RmsNormMatchesReference) {
  for (auto [rows, cols, stride] :
       {std::tuple<int64_t, int64_t, int64_t>{129, 4096, 0}, {33, 36, 41}, {7, 1000, 1024}}) {
    TwinMatrix x = make_twin(*cpu_, *gpu_, rows, cols, rng_, 2.0f, 0.0f, stride);
    TwinMatrix w = make_twin(*cpu_, *gpu_, 1, cols, rng_, 0.1f, 1.0f);
    TwinMatrix out = make_twin(*cpu_, *gpu_, rows, cols, rng_, 1.0f, 0.0f, stride);
    testing::poison(*gpu_, out);
    cpu_->rms_norm(x.cpu, w.cpu, 1e-5f, out.cpu);
    gpu_->rms_norm(x.gpu, w.gpu, 1e-5f, out.gpu);
    EXPECT_LT(compare(*cpu_, *gpu_, out,
                      "rms_norm " + std::to_string(rows) + "x" + std::to_string(cols) + " stride " +
                          std::to_string(stride)),
              kBf16Tolerance);
  }
}

TEST_F(CudaKernelTest, LayerNormMatchesReference) {
  for (bool with_bias : {true, false}) {
    TwinMatrix x = make_twin(*cpu_, *gpu_, 65, 4544, rng_, 2.0f, 0.5f);
    TwinMatrix w = make_twin(*cpu_, *gpu_, 1, 4544, rng_, 0.1f, 1.0f);
    TwinMatrix b = make_twin(*cpu_, *gpu_, 1, 4544, rng_, 0.1f);
    TwinMatrix out = make_twin(*cpu_, *gpu_, 65, 4544, rng_);
    testing::poison(*gpu_, out);
    cpu_->layer_norm(x.cpu, w.cpu, with_bias ? b.cpu : Tensor{}, 1e-5f, out.cpu);
    gpu_->layer_norm(x.gpu, w.gpu, with_bias ? b.gpu : Tensor{}, 1e-5f, out.gpu);
    EXPECT_LT(compare(*cpu_, *gpu_, out,
                      std::string("layer_norm 65x4544 ") + (with_bias ? "bias" : "no bias")),
              kBf16Tolerance);
  }
}

TEST_F(CudaKernelTest, AddRmsNormMatchesReferenceAndSeparateOps) {
  for (auto [rows, cols, stride] :
       {std::tuple<int64_t, int64_t, int64_t>{129, 4096, 0}, {33, 36, 41}, {7, 1000, 1024}}) {
    const std::string shape =
        std::to_string(rows) + "x" + std::to_string(cols) + " stride " + std::to_string(stride);
    TwinMatrix residual = make_twin(*cpu_, *gpu_, rows, cols, rng_, 2.0f, 0.0f, stride);
    TwinMatrix delta = make_twin(*cpu_, *gpu_, rows, cols, rng_, 1.0f);
    TwinMatrix w = make_twin(*cpu_, *gpu_, 1, cols, rng_, 0.1f, 1.0f);
    TwinMatrix out = make_twin(*cpu_, *gpu_, rows, cols, rng_, 1.0f, 0.0f, stride);
    // The separate add and rms_norm on the GPU, on a copy of the residual.
    TwinMatrix separate_residual = make_twin(*cpu_, *gpu_, rows, cols, rng_, 1.0f, 0.0f, stride);
    TwinMatrix separate_out = make_twin(*cpu_, *gpu_, rows, cols, rng_);
    gpu_->copy(residual.gpu, separate_residual.gpu);
    testing::poison(*gpu_, out);
    cpu_->add_rms_norm(residual.cpu, delta.cpu, w.cpu, 1e-5f, out.cpu);
    gpu_->add_rms_norm(residual.gpu, delta.gpu, w.gpu, 1e-5f, out.gpu);
    EXPECT_LT(compare(*cpu_, *gpu_, residual, "add_rms_norm sum " + shape), kBf16Tolerance);
    EXPECT_LT(compare(*cpu_, *gpu_, out, "add_rms_norm " + shape), kBf16Tolerance);
    // Fused, the norm reads the sum as stored: bit for bit the separate operations.
    gpu_->add(separate_residual.gpu, delta.gpu, separate_residual.gpu);
    gpu_->rms_norm(separate_residual.gpu, w.gpu, 1e-5f, separate_out.gpu);
    EXPECT_EQ(testing::read_gpu(*gpu_, out.gpu), testing::read_gpu(*gpu_, separate_out.gpu))
        << shape;
    EXPECT_EQ(testing::read_gpu(*gpu_, residual.gpu),
              testing::read_gpu(*gpu_, separate_residual.gpu))
        << shape;
  }
}

TEST_F(CudaKernelTest, AddLayerNormMatchesReferenceAndSeparateOps) {
  for (bool with_bias : {true, false}) {
    const std::string what = with_bias ? "bias" : "no bias";
    TwinMatrix residual = make_twin(*cpu_, *gpu_, 65, 4544, rng_, 2.0f, 0.5f);
    TwinMatrix delta = make_twin(*cpu_, *gpu_, 65, 4544, rng_, 1.0f, 0.0f, 4600);
    TwinMatrix w = make_twin(*cpu_, *gpu_, 1, 4544, rng_, 0.1f, 1.0f);
    TwinMatrix b = make_twin(*cpu_, *gpu_, 1, 4544, rng_, 0.1f);
    TwinMatrix out = make_twin(*cpu_, *gpu_, 65, 4544, rng_);
    TwinMatrix separate_residual = make_twin(*cpu_, *gpu_, 65, 4544, rng_);
    TwinMatrix separate_out = make_twin(*cpu_, *gpu_, 65, 4544, rng_);
    gpu_->copy(residual.gpu, separate_residual.gpu);
    testing::poison(*gpu_, out);
    cpu_->add_layer_norm(residual.cpu, delta.cpu, w.cpu, with_bias ? b.cpu : Tensor{}, 1e-5f,
                         out.cpu);
    gpu_->add_layer_norm(residual.gpu, delta.gpu, w.gpu, with_bias ? b.gpu : Tensor{}, 1e-5f,
                         out.gpu);
    EXPECT_LT(compare(*cpu_, *gpu_, residual, "add_layer_norm sum 65x4544 " + what),
              kBf16Tolerance);
    EXPECT_LT(compare(*cpu_, *gpu_, out, "add_layer_norm 65x4544 " + what), kBf16Tolerance);
    gpu_->add(separate_residual.gpu, delta.gpu, separate_residual.gpu);
    gpu_->layer_norm(separate_residual.gpu, w.gpu, with_bias ? b.gpu : Tensor{}, 1e-5f,
                     separate_out.gpu);
    EXPECT_EQ(testing::read_gpu(*gpu_, out.gpu), testing::read_gpu(*gpu_, separate_out.gpu))
        << what;
  }
}

TEST_F(CudaKernelTest, MatmulMatchesReference) {
  struct Case {
    int64_t n, k, m;
    bool bias;
    int64_t x_stride;
  };
  for (const Case& c :
       {Case{257, 512, 384, false, 0}, Case{64, 4096, 1000, true, 0}, Case{1, 36, 97, false, 0},
        Case{19, 36, 60, true, 60}, Case{300, 128, 256, true, 384}}) {
    TwinMatrix x = make_twin(*cpu_, *gpu_, c.n, c.k, rng_, 1.0f, 0.0f, c.x_stride);
    TwinMatrix w = make_twin(*cpu_, *gpu_, c.m, c.k, rng_, 1.0f / std::sqrt(float(c.k)));
    TwinMatrix bias = make_twin(*cpu_, *gpu_, 1, c.m, rng_, 0.5f);
    TwinMatrix out = make_twin(*cpu_, *gpu_, c.n, c.m, rng_);
    testing::poison(*gpu_, out);
    cpu_->matmul(x.cpu, w.cpu, c.bias ? bias.cpu : Tensor{}, out.cpu);
    gpu_->matmul(x.gpu, w.gpu, c.bias ? bias.gpu : Tensor{}, out.gpu);
    EXPECT_LT(compare(*cpu_, *gpu_, out,
                      "matmul " + std::to_string(c.n) + "x" + std::to_string(c.k) + " by " +
                          std::to_string(c.m) + (c.bias ? " +bias" : "") + " x_stride " +
                          std::to_string(c.x_stride)),
              kBf16Tolerance);
  }
}

TEST_F(CudaKernelTest, MatmulWritesIntoColumnSlice) {
  // The Q/K/V layout: the output is a column slice of a wider matrix; the rest stays untouched.
  TwinMatrix x = make_twin(*cpu_, *gpu_, 50, 256, rng_);
  TwinMatrix w = make_twin(*cpu_, *gpu_, 128, 256, rng_, 1.0f / 16);
  TwinMatrix wide = make_twin(*cpu_, *gpu_, 50, 384, rng_);
  cpu_->matmul(x.cpu, w.cpu, Tensor{}, wide.cpu.cols_slice(128, 256));
  gpu_->matmul(x.gpu, w.gpu, Tensor{}, wide.gpu.cols_slice(128, 256));
  EXPECT_LT(compare(*cpu_, *gpu_, wide, "matmul into columns [128, 256) of 384"), kBf16Tolerance);
}

TEST_F(CudaKernelTest, AutotunedMatmulMatchesReferenceAndReusesItsBucket) {
  // A matmul of its own, so that the counts start at zero: the first prefill-sized product of
  // the n <= 1024 bucket times the candidates; another n of that bucket takes the tuned
  // algorithm once cuBLASLt checked it (or the heuristic's when the check fails); a repeated
  // shape plans nothing; a decode-sized product is not tuned.
  auto created = CublasLtMatmul::create();
  ASSERT_TRUE(created.is_ok()) << created.error().to_string();
  CublasLtMatmul& matmul = **created;
  ASSERT_FALSE(matmul.autotune()) << "autotuning is off by default";
  matmul.set_autotune(true);
  const int64_t k = 2048;
  const int64_t m = 1536;
  TwinMatrix w = make_twin(*cpu_, *gpu_, m, k, rng_, 1.0f / std::sqrt(float(k)));
  TwinMatrix bias = make_twin(*cpu_, *gpu_, 1, m, rng_, 0.5f);
  struct Step {
    int64_t n;
    bool tuned_size;
    int64_t tuned;
    int64_t reused_or_refused;  // AutotuneCounts::reused + check_failed
  };
  for (const Step& step : {Step{1024, true, 1, 0}, Step{777, true, 1, 1}, Step{1024, true, 1, 1},
                           Step{16, false, 1, 1}}) {
    const std::string what = "autotuned matmul " + std::to_string(step.n) + "x" +
                             std::to_string(k) + " by " + std::to_string(m) + " +bias";
    ASSERT_EQ(step.n * k * m >= CublasLtMatmul::kAutotuneMinProduct, step.tuned_size) << what;
    TwinMatrix x = make_twin(*cpu_, *gpu_, step.n, k, rng_);
    TwinMatrix out = make_twin(*cpu_, *gpu_, step.n, m, rng_);
    testing::poison(*gpu_, out);
    cpu_->matmul(x.cpu, w.cpu, bias.cpu, out.cpu);
    const Status status = matmul.run(x.gpu, w.gpu, bias.gpu, out.gpu, gpu_->stream());
    ASSERT_TRUE(status.is_ok()) << what << ": " << status.to_string();
    EXPECT_LT(compare(*cpu_, *gpu_, out, what), kBf16Tolerance);
    const CublasLtMatmul::AutotuneCounts& counts = matmul.autotune_counts();
    EXPECT_EQ(counts.tuned, step.tuned) << what;
    EXPECT_EQ(counts.reused + counts.check_failed, step.reused_or_refused) << what;
  }
  for (const std::string& line : matmul.autotune_report()) {
    std::printf("[ autotune ] %s\n", line.c_str());
  }
  EXPECT_FALSE(matmul.autotune_report().empty());

  // Through the backend, tuned and not, on a strided input: the same product either way.
  for (const bool on : {true, false}) {
    gpu_->set_matmul_autotune(on);
    TwinMatrix x = make_twin(*cpu_, *gpu_, 1500, k, rng_, 1.0f, 0.0f, k + 64);
    TwinMatrix out = make_twin(*cpu_, *gpu_, 1500, m, rng_);
    testing::poison(*gpu_, out);
    cpu_->matmul(x.cpu, w.cpu, Tensor{}, out.cpu);
    gpu_->matmul(x.gpu, w.gpu, Tensor{}, out.gpu);
    ASSERT_TRUE(gpu_->synchronize().is_ok());
    EXPECT_LT(compare(*cpu_, *gpu_, out,
                      std::string("backend matmul 1500x2048 stride 2112 by 1536, autotune ") +
                          (on ? "on" : "off")),
              kBf16Tolerance);
  }
  gpu_->set_matmul_autotune(false);
}

TEST_F(CudaKernelTest, RopeMatchesReferenceInBothStyles) {
  for (RopeStyle style : {RopeStyle::kHalf, RopeStyle::kInterleaved}) {
    for (auto [heads, head_dim, rotary] :
         {std::tuple<int, int, int>{4, 128, 128}, {6, 12, 12}, {3, 64, 32}}) {
      const int64_t rows = 97;
      const int64_t stride = heads * head_dim + 40;  // a column slice of a wider qkv row
      TwinMatrix x = make_twin(*cpu_, *gpu_, rows, heads * head_dim, rng_, 1.0f, 0.0f, stride);
      std::vector<float> inv_freq(static_cast<size_t>(rotary / 2));
      for (int i = 0; i < rotary / 2; ++i) {
        inv_freq[i] =
            std::pow(10000.0f, -2.0f * static_cast<float>(i) / static_cast<float>(rotary));
      }
      auto cpu_freq = cpu_->allocate(inv_freq.size() * 4);
      auto gpu_freq = gpu_->allocate(inv_freq.size() * 4);
      ASSERT_TRUE(cpu_freq && gpu_freq);
      const Tensor cpu_f = cpu_freq->view(DType::kF32, 1, rotary / 2);
      const Tensor gpu_f = gpu_freq->view(DType::kF32, 1, rotary / 2);
      ASSERT_TRUE(cpu_->copy_from_host(inv_freq.data(), cpu_f).is_ok());
      ASSERT_TRUE(gpu_->copy_from_host(inv_freq.data(), gpu_f).is_ok());
      const int64_t first_position = 30000;  // large angles, as in long prompts
      RopeArgs args{.x = x.cpu,
                    .n_heads = heads,
                    .head_dim = head_dim,
                    .rotary_dim = rotary,
                    .first_position = first_position,
                    .inv_freq = cpu_f,
                    .style = style};
      cpu_->rope(args);
      args.x = x.gpu;
      args.inv_freq = gpu_f;
      gpu_->rope(args);
      EXPECT_LT(
          compare(*cpu_, *gpu_, x,
                  std::string("rope ") + (style == RopeStyle::kHalf ? "half" : "interleaved") +
                      " heads " + std::to_string(heads) + " dim " + std::to_string(head_dim) +
                      " rotary " + std::to_string(rotary)),
          kBf16Tolerance);
    }
  }
}

TEST_F(CudaKernelTest, SwigluMatchesReference) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{131, 11008}, {9, 52}}) {
    TwinMatrix gate_up = make_twin(*cpu_, *gpu_, rows, 2 * cols, rng_, 4.0f);
    TwinMatrix out = make_twin(*cpu_, *gpu_, rows, cols, rng_);
    testing::poison(*gpu_, out);
    cpu_->swiglu(gate_up.cpu, out.cpu);
    gpu_->swiglu(gate_up.gpu, out.gpu);
    EXPECT_LT(
        compare(*cpu_, *gpu_, out, "swiglu " + std::to_string(rows) + "x" + std::to_string(cols)),
        kBf16Tolerance);
  }
}

TEST_F(CudaKernelTest, GeluMatchesReference) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{65, 4 * 4544}, {9, 52}}) {
    TwinMatrix x = make_twin(*cpu_, *gpu_, rows, cols, rng_, 4.0f);
    TwinMatrix out = make_twin(*cpu_, *gpu_, rows, cols, rng_);
    testing::poison(*gpu_, out);
    cpu_->gelu(x.cpu, out.cpu);
    gpu_->gelu(x.gpu, out.gpu);
    EXPECT_LT(
        compare(*cpu_, *gpu_, out, "gelu " + std::to_string(rows) + "x" + std::to_string(cols)),
        kBf16Tolerance);
  }
}

TEST_F(CudaKernelTest, AddMatchesReferenceInPlace) {
  TwinMatrix a = make_twin(*cpu_, *gpu_, 200, 4096, rng_);
  TwinMatrix b = make_twin(*cpu_, *gpu_, 200, 4096, rng_);
  cpu_->add(a.cpu, b.cpu, a.cpu);
  gpu_->add(a.gpu, b.gpu, a.gpu);
  EXPECT_LT(compare(*cpu_, *gpu_, a, "add 200x4096 in place"), kBf16Tolerance);

  TwinMatrix c = make_twin(*cpu_, *gpu_, 5, 37, rng_, 1.0f, 0.0f, 45);
  TwinMatrix d = make_twin(*cpu_, *gpu_, 5, 37, rng_);
  TwinMatrix out = make_twin(*cpu_, *gpu_, 5, 37, rng_, 1.0f, 0.0f, 40);
  testing::poison(*gpu_, out);
  cpu_->add(c.cpu, d.cpu, out.cpu);
  gpu_->add(c.gpu, d.gpu, out.gpu);
  EXPECT_LT(compare(*cpu_, *gpu_, out, "add 5x37 strided"), kBf16Tolerance);
}

TEST_F(CudaKernelTest, ArgmaxMatchesReferenceFirstOnTies) {
  for (int64_t cols : {int64_t{128256}, int64_t{32000}, int64_t{97}, int64_t{1}}) {
    TwinMatrix row = make_twin(*cpu_, *gpu_, 1, cols, rng_, 8.0f);
    auto want = cpu_->argmax(row.cpu);
    auto got = gpu_->argmax(row.gpu);
    ASSERT_TRUE(want.is_ok() && got.is_ok());
    EXPECT_EQ(*got, *want) << cols << " values";
    EXPECT_EQ(*got, argmax(row.values)) << cols << " values";
  }
  // Planted ties: the largest value at several places (bf16 rounds many values alike, so the
  // tie is exact on both sides); the first one wins.
  std::uniform_int_distribution<int64_t> place(0, 32000 - 1);
  for (int trial = 0; trial < 5; ++trial) {
    std::vector<float> values(32000);
    std::uniform_real_distribution<float> dist(-4.0f, 4.0f);
    for (float& x : values) x = dist(rng_);
    std::vector<int64_t> at = {place(rng_), place(rng_), place(rng_)};
    for (int64_t i : at) values[static_cast<size_t>(i)] = 9.5f;
    auto buffer = gpu_->allocate(values.size() * sizeof(float));
    ASSERT_TRUE(buffer.is_ok());
    const Tensor row = buffer->view(DType::kF32, 1, 32000);
    ASSERT_TRUE(gpu_->copy_from_host(values.data(), row).is_ok());
    auto got = gpu_->argmax(row);
    ASSERT_TRUE(got.is_ok());
    EXPECT_EQ(*got, *std::min_element(at.begin(), at.end()));
  }
  // All -inf: the first index, as the sequential scan.
  std::vector<float> flat(1000, -INFINITY);
  auto buffer = gpu_->allocate(flat.size() * sizeof(float));
  ASSERT_TRUE(buffer.is_ok());
  const Tensor row = buffer->view(DType::kF32, 1, 1000);
  ASSERT_TRUE(gpu_->copy_from_host(flat.data(), row).is_ok());
  auto got = gpu_->argmax(row);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(*got, 0);
}

TEST_F(CudaKernelTest, CopyHonorsStrides) {
  // The K/V cache layout: a column slice of [n, 3 * 96] copied into a [n, 2 * 96] row block.
  TwinMatrix qkv = make_twin(*cpu_, *gpu_, 70, 288, rng_);
  TwinMatrix cache = make_twin(*cpu_, *gpu_, 100, 192, rng_);
  cpu_->copy(qkv.cpu.cols_slice(96, 192), cache.cpu.rows_slice(20, 90).cols_slice(96, 192));
  gpu_->copy(qkv.gpu.cols_slice(96, 192), cache.gpu.rows_slice(20, 90).cols_slice(96, 192));
  EXPECT_EQ(compare(*cpu_, *gpu_, cache, "copy strided 70x96"), 0.0);
}

}  // namespace
}  // namespace runahead
