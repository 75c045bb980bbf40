// Prefill attention on the GPU (each tensor-core kernel and the general one) against the fp32
// CPU reference, row by row: MHA, GQA and MQA, every supported head size, a causal offset
// (q_begin > 0), single queries (decode) at the key tiles' edges, and K/V read from the cache
// layout (rows of [keys | values], stride 2 * kv_dim). Each forced kernel is checked to be the
// one that ran.
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <string>
#include <vector>

#include "tests/cuda/twin_tensor.h"

namespace runahead {
namespace {

using testing::compare;
using testing::make_twin;
using testing::TwinMatrix;

constexpr double kTolerance = 1e-2;

struct AttentionCase {
  int n_heads;
  int n_kv_heads;
  int head_dim;
  int64_t q_begin;
  int64_t n_q;
  bool general_only;

  std::string name() const {
    return std::to_string(n_heads) + "/" + std::to_string(n_kv_heads) + " heads, dim " +
           std::to_string(head_dim) + ", queries [" + std::to_string(q_begin) + ", " +
           std::to_string(q_begin + n_q) + ")";
  }
};

void PrintTo(const AttentionCase& c, std::ostream* os) {
  *os << c.name();
}

class CudaAttentionTest : public testing::CudaTest,
                          public ::testing::WithParamInterface<AttentionCase> {
 protected:
  void SetUp() override { testing::CudaTest::SetUp(); }
};

TEST_P(CudaAttentionTest, MatchesReference) {
  const AttentionCase c = GetParam();
  const int64_t keys = c.q_begin + c.n_q;
  const int kv_dim = c.n_kv_heads * c.head_dim;
  const int q_dim = c.n_heads * c.head_dim;
  // Q as a column slice of a qkv row; K/V as the two halves of cache rows, with a few spare
  // rows after the visible keys that must not be read.
  TwinMatrix qkv = make_twin(*cpu_, *gpu_, c.n_q, q_dim + 2 * kv_dim, rng_, 2.0f);
  TwinMatrix cache = make_twin(*cpu_, *gpu_, keys + 13, 2 * kv_dim, rng_, 2.0f);
  TwinMatrix out = make_twin(*cpu_, *gpu_, c.n_q, q_dim, rng_);
  testing::poison(*gpu_, out);

  AttentionArgs args{.q = qkv.cpu.cols_slice(0, q_dim),
                     .k = cache.cpu.rows_slice(0, keys).cols_slice(0, kv_dim),
                     .v = cache.cpu.rows_slice(0, keys).cols_slice(kv_dim, 2 * kv_dim),
                     .out = out.cpu,
                     .n_heads = c.n_heads,
                     .n_kv_heads = c.n_kv_heads,
                     .head_dim = c.head_dim,
                     .q_begin = c.q_begin,
                     .scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim))};
  cpu_->attention(args);
  args.q = qkv.gpu.cols_slice(0, q_dim);
  args.k = cache.gpu.rows_slice(0, keys).cols_slice(0, kv_dim);
  args.v = cache.gpu.rows_slice(0, keys).cols_slice(kv_dim, 2 * kv_dim);
  args.out = out.gpu;
  struct Variant {
    AttentionKernel kernel;
    int warps;
    const char* name;
  };
  const std::vector<Variant> variants =
      c.general_only ? std::vector<Variant>{{AttentionKernel::kGeneral, 0, "general"}}
                     : std::vector<Variant>{{AttentionKernel::kAuto, 0, "auto"},
                                            {AttentionKernel::kFa3, 0, "fa3"},
                                            {AttentionKernel::kWgmma, 0, "wgmma"},
                                            {AttentionKernel::kMma, 4, "mma 4 warps"},
                                            {AttentionKernel::kMma, 8, "mma 8 warps"}};
  for (const Variant& variant : variants) {
    testing::poison(*gpu_, out);
    gpu_->set_attention_kernel(variant.kernel);
    gpu_->set_attention_warps(variant.warps);
    gpu_->attention(args);
    EXPECT_LT(compare(*cpu_, *gpu_, out, "attention " + c.name() + ", " + variant.name), kTolerance)
        << variant.name;
    // A forced kernel must have run, not fallen back: the tensor-core kernels take head_dim 64
    // and 128 (on compute capability 9.0 for fa3 and wgmma), everything else the general one.
    const bool tensor_core_shape = c.head_dim == 64 || c.head_dim == 128;
    const bool hopper = gpu_->properties().major == 9 && gpu_->properties().minor == 0;
    AttentionKernel expected = variant.kernel;
    if (!tensor_core_shape) {
      expected = AttentionKernel::kGeneral;
    } else if (variant.kernel == AttentionKernel::kAuto) {
      expected = hopper ? AttentionKernel::kFa3 : AttentionKernel::kMma;
    } else if (!hopper && variant.kernel != AttentionKernel::kGeneral) {
      expected = AttentionKernel::kMma;
    }
    EXPECT_EQ(static_cast<int>(gpu_->last_attention_kernel()), static_cast<int>(expected))
        << variant.name << " ran another kernel";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaAttentionTest,
    ::testing::Values(
        // Tensor-core kernel: head_dim 128 and 64, MHA/GQA/MQA, ragged tiles, causal offsets.
        AttentionCase{4, 4, 128, 0, 300, false}, AttentionCase{8, 2, 128, 517, 190, false},
        AttentionCase{4, 1, 128, 1000, 1048, false}, AttentionCase{6, 6, 64, 0, 129, false},
        AttentionCase{8, 1, 64, 77, 1, false}, AttentionCase{4, 2, 128, 0, 1, false},
        AttentionCase{4, 4, 64, 64, 64, false},
        // Long causal range: many trips around the K/V staging ring, ragged first and last tiles.
        AttentionCase{2, 1, 128, 4000, 4300, false}, AttentionCase{4, 2, 64, 300, 2000, false},
        // General kernel: odd head sizes and the same shapes as above.
        AttentionCase{6, 2, 12, 0, 41, true}, AttentionCase{6, 2, 12, 29, 12, true},
        AttentionCase{2, 1, 96, 33, 200, true}, AttentionCase{2, 2, 256, 0, 130, true},
        AttentionCase{4, 2, 128, 517, 190, true}, AttentionCase{3, 1, 80, 0, 70, false},
        // One query (a decode step) at positions around the key tiles' edges (32 keys for the
        // general kernel, 64 and 128 for the tensor-core ones), for every head size and ratio.
        AttentionCase{4, 1, 64, 127, 1, false}, AttentionCase{4, 1, 64, 128, 1, false},
        AttentionCase{4, 1, 64, 300, 1, false}, AttentionCase{8, 2, 128, 255, 1, false},
        AttentionCase{8, 2, 128, 256, 1, false}, AttentionCase{6, 6, 128, 1000, 1, false},
        AttentionCase{8, 1, 32, 31, 1, false}, AttentionCase{8, 1, 32, 300, 1, false},
        AttentionCase{6, 2, 40, 299, 1, false}, AttentionCase{6, 2, 40, 4096, 1, false},
        AttentionCase{5, 5, 80, 63, 1, false}, AttentionCase{6, 3, 96, 1000, 1, false},
        AttentionCase{2, 1, 256, 300, 1, false},
        // A few queries after a long prefix, and prefill of odd sizes at tile edges.
        AttentionCase{6, 2, 40, 300, 3, false}, AttentionCase{8, 1, 32, 0, 300, false},
        AttentionCase{6, 2, 40, 0, 300, false}, AttentionCase{4, 1, 64, 0, 300, false},
        AttentionCase{3, 1, 96, 64, 65, false}, AttentionCase{4, 4, 128, 0, 4097, false}));

}  // namespace
}  // namespace runahead
