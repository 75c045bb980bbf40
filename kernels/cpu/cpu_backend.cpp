// The fp32 reference backend: OpenBLAS for the matrix products, OpenMP across cores for the rest.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

#include "kernels/backend.h"

namespace runahead {
namespace {

[[maybe_unused]] bool is_f32(const Tensor& t) {
  return t.empty() || t.dtype == DType::kF32;
}

// Rotates each row r of a.x at position_of(r).
template <typename PositionOf>
void rotate(const RopeArgs& a, PositionOf position_of) {
  assert(is_f32(a.x) && a.inv_freq.dtype == DType::kF32);
  const int half = a.rotary_dim / 2;
  const float* inv_freq = a.inv_freq.as<float>();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < a.x.rows; ++r) {
    const auto position = static_cast<float>(position_of(r));
    float* row = a.x.row<float>(r);
    for (int i = 0; i < half; ++i) {
      // As Hugging Face: the angle in fp32, then cos and sin of it.
      const float angle = position * inv_freq[i];
      const float cos_a = std::cos(angle);
      const float sin_a = std::sin(angle);
      for (int h = 0; h < a.n_heads; ++h) {
        float* head = row + static_cast<int64_t>(h) * a.head_dim;
        const int first = a.style == RopeStyle::kHalf ? i : 2 * i;
        const int second = a.style == RopeStyle::kHalf ? i + half : 2 * i + 1;
        const float x0 = head[first];
        const float x1 = head[second];
        head[first] = x0 * cos_a - x1 * sin_a;
        head[second] = x1 * cos_a + x0 * sin_a;
      }
    }
  }
}

struct QueryScratch {
  std::vector<float> scores;
  std::vector<double> accumulator;
};

// Head h of query row i with plain loops: every query's result is computed in the same order
// whatever slice or batch it belongs to, so sliced, one-shot and batched runs agree.
void attend_query(const AttentionArgs& a, int h, int64_t i, QueryScratch& scratch) {
  const int group = a.n_heads / a.n_kv_heads;
  const int64_t hd = a.head_dim;
  const int64_t visible = a.q_begin + i + 1;
  const int64_t kv_offset = static_cast<int64_t>(h / group) * hd;
  const float* q = a.q.row<float>(i) + static_cast<int64_t>(h) * hd;
  std::vector<float>& scores = scratch.scores;
  std::vector<double>& accumulator = scratch.accumulator;
  scores.resize(static_cast<size_t>(visible));
  float max_score = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < visible; ++j) {
    const float* k = a.k.row<float>(j) + kv_offset;
    float dot = 0.0f;
    for (int64_t d = 0; d < hd; ++d) dot += q[d] * k[d];
    scores[j] = dot * a.scale;
    max_score = std::max(max_score, scores[j]);
  }
  double total = 0.0;
  for (int64_t j = 0; j < visible; ++j) {
    scores[j] = std::exp(scores[j] - max_score);
    total += scores[j];
  }
  accumulator.assign(static_cast<size_t>(hd), 0.0);
  for (int64_t j = 0; j < visible; ++j) {
    const float* v = a.v.row<float>(j) + kv_offset;
    for (int64_t d = 0; d < hd; ++d) accumulator[d] += double{scores[j]} * v[d];
  }
  float* o = a.out.row<float>(i) + static_cast<int64_t>(h) * hd;
  for (int64_t d = 0; d < hd; ++d) o[d] = static_cast<float>(accumulator[d] / total);
}

class CpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  DeviceKind device_kind() const override { return DeviceKind::kCpu; }
  DType compute_dtype() const override { return DType::kF32; }
  size_t free_memory_bytes() const override;

  // The CPU backend's memory is host memory.
  Result<Buffer> allocate(size_t bytes) override { return allocate_host(bytes); }

  Status copy_from_host(const void* src, Tensor dst) override {
    const size_t row_bytes = static_cast<size_t>(dst.cols) * dtype_size(dst.dtype);
    for (int64_t r = 0; r < dst.rows; ++r) {
      std::memcpy(dst.row_address(r), static_cast<const char*>(src) + r * row_bytes, row_bytes);
    }
    return Status::ok();
  }

  Status copy_to_host(Tensor src, void* dst) override {
    const size_t row_bytes = static_cast<size_t>(src.cols) * dtype_size(src.dtype);
    for (int64_t r = 0; r < src.rows; ++r) {
      std::memcpy(static_cast<char*>(dst) + r * row_bytes, src.row_address(r), row_bytes);
    }
    return Status::ok();
  }

  Status synchronize() override { return Status::ok(); }

  Result<int32_t> argmax(Tensor row) override {
    assert(is_f32(row) && row.rows == 1);
    const float* x = row.as<float>();
    int32_t best = 0;
    for (int64_t i = 1; i < row.cols; ++i) {
      if (x[i] > x[best]) best = static_cast<int32_t>(i);
    }
    return best;
  }

  void embed(Tensor table, const int32_t* tokens, Tensor out) override {
    assert(is_f32(table) && is_f32(out) && table.cols == out.cols);
    for (int64_t i = 0; i < out.rows; ++i) {
      std::memcpy(out.row<float>(i), table.row<float>(tokens[i]), out.cols * sizeof(float));
    }
  }

  void rms_norm(Tensor x, Tensor weight, float eps, Tensor out) override {
    assert(is_f32(x) && is_f32(weight) && is_f32(out) && x.cols == weight.cols);
    const float* w = weight.as<float>();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < x.rows; ++r) {
      const float* in = x.row<float>(r);
      float* o = out.row<float>(r);
      double sum_squares = 0.0;
      for (int64_t i = 0; i < x.cols; ++i) sum_squares += double{in[i]} * in[i];
      const float inv_rms =
          1.0f / std::sqrt(static_cast<float>(sum_squares / static_cast<double>(x.cols)) + eps);
      for (int64_t i = 0; i < x.cols; ++i) o[i] = w[i] * (in[i] * inv_rms);
    }
  }

  void layer_norm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) override {
    assert(is_f32(x) && is_f32(weight) && is_f32(bias) && is_f32(out));
    const float* w = weight.as<float>();
    const float* b = bias.empty() ? nullptr : bias.as<float>();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < x.rows; ++r) {
      const float* in = x.row<float>(r);
      float* o = out.row<float>(r);
      double sum = 0.0;
      for (int64_t i = 0; i < x.cols; ++i) sum += in[i];
      const double mean = sum / static_cast<double>(x.cols);
      double sum_squares = 0.0;
      for (int64_t i = 0; i < x.cols; ++i) sum_squares += (in[i] - mean) * (in[i] - mean);
      const float inv_std =
          1.0f / std::sqrt(static_cast<float>(sum_squares / static_cast<double>(x.cols)) + eps);
      const auto mean_f = static_cast<float>(mean);
      for (int64_t i = 0; i < x.cols; ++i) {
        o[i] = (in[i] - mean_f) * inv_std * w[i] + (b != nullptr ? b[i] : 0.0f);
      }
    }
  }

  // One pass: each row's sum is stored and its statistics gathered, then the row normalized.
  void add_rms_norm(Tensor residual, Tensor delta, Tensor weight, float eps, Tensor out) override {
    assert(is_f32(residual) && is_f32(delta) && is_f32(weight) && is_f32(out));
    assert(residual.cols == delta.cols && residual.cols == weight.cols);
    const float* w = weight.as<float>();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < residual.rows; ++r) {
      float* h = residual.row<float>(r);
      const float* d = delta.row<float>(r);
      float* o = out.row<float>(r);
      double sum_squares = 0.0;
      for (int64_t i = 0; i < residual.cols; ++i) {
        h[i] += d[i];
        sum_squares += double{h[i]} * h[i];
      }
      const float inv_rms =
          1.0f /
          std::sqrt(static_cast<float>(sum_squares / static_cast<double>(residual.cols)) + eps);
      for (int64_t i = 0; i < residual.cols; ++i) o[i] = w[i] * (h[i] * inv_rms);
    }
  }

  void add_layer_norm(Tensor residual, Tensor delta, Tensor weight, Tensor bias, float eps,
                      Tensor out) override {
    assert(is_f32(residual) && is_f32(delta) && is_f32(weight) && is_f32(bias) && is_f32(out));
    assert(residual.cols == delta.cols && residual.cols == weight.cols);
    const float* w = weight.as<float>();
    const float* b = bias.empty() ? nullptr : bias.as<float>();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < residual.rows; ++r) {
      float* h = residual.row<float>(r);
      const float* d = delta.row<float>(r);
      float* o = out.row<float>(r);
      double sum = 0.0;
      for (int64_t i = 0; i < residual.cols; ++i) {
        h[i] += d[i];
        sum += h[i];
      }
      const double mean = sum / static_cast<double>(residual.cols);
      double sum_squares = 0.0;
      for (int64_t i = 0; i < residual.cols; ++i) sum_squares += (h[i] - mean) * (h[i] - mean);
      const float inv_std =
          1.0f /
          std::sqrt(static_cast<float>(sum_squares / static_cast<double>(residual.cols)) + eps);
      const auto mean_f = static_cast<float>(mean);
      for (int64_t i = 0; i < residual.cols; ++i) {
        o[i] = (h[i] - mean_f) * inv_std * w[i] + (b != nullptr ? b[i] : 0.0f);
      }
    }
  }

  void matmul(Tensor x, Tensor w, Tensor bias, Tensor out) override {
    assert(is_f32(x) && is_f32(w) && is_f32(bias) && is_f32(out));
    assert(x.cols == w.cols && out.rows == x.rows && out.cols == w.rows);
    if (x.rows == 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(x.rows),
                static_cast<int>(w.rows), static_cast<int>(x.cols), 1.0f, x.as<float>(),
                static_cast<int>(x.row_stride), w.as<float>(), static_cast<int>(w.row_stride), 0.0f,
                out.as<float>(), static_cast<int>(out.row_stride));
    if (!bias.empty()) {
      const float* b = bias.as<float>();
      for (int64_t r = 0; r < out.rows; ++r) {
        float* o = out.row<float>(r);
        for (int64_t i = 0; i < out.cols; ++i) o[i] += b[i];
      }
    }
  }

  void rope(const RopeArgs& a) override {
    rotate(a, [&](int64_t r) { return a.first_position + r; });
  }

  void rope_rows(const RopeArgs& a, std::span<const int64_t> positions) override {
    assert(positions.size() == static_cast<size_t>(a.x.rows));
    rotate(a, [&](int64_t r) { return positions[static_cast<size_t>(r)]; });
  }

  void attention(const AttentionArgs& a) override {
    assert(is_f32(a.q) && is_f32(a.k) && is_f32(a.v) && is_f32(a.out));
    const int64_t n_q = a.q.rows;
    assert(a.k.rows >= a.q_begin + n_q && a.v.rows >= a.q_begin + n_q);
#pragma omp parallel
    {
      QueryScratch scratch;
#pragma omp for collapse(2) schedule(dynamic, 16)
      for (int h = 0; h < a.n_heads; ++h) {
        for (int64_t i = 0; i < n_q; ++i) attend_query(a, h, i, scratch);
      }
    }
  }

  // Every (request, head) pair of the batch in parallel, each computed as attention() does.
  void decode_attention(std::span<const AttentionArgs> rows) override {
    if (rows.empty()) return;
    const auto n_rows = static_cast<int64_t>(rows.size());
    const int n_heads = rows[0].n_heads;
#pragma omp parallel
    {
      QueryScratch scratch;
#pragma omp for collapse(2) schedule(dynamic, 4)
      for (int64_t r = 0; r < n_rows; ++r) {
        for (int h = 0; h < n_heads; ++h) {
          const AttentionArgs& a = rows[static_cast<size_t>(r)];
          assert(a.q.rows == 1 && a.k.rows >= a.q_begin + 1);
          attend_query(a, h, 0, scratch);
        }
      }
    }
  }

  void swiglu(Tensor gate_up, Tensor out) override {
    assert(is_f32(gate_up) && is_f32(out) && gate_up.cols == 2 * out.cols);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < out.rows; ++r) {
      const float* gate = gate_up.row<float>(r);
      const float* up = gate + out.cols;
      float* o = out.row<float>(r);
      for (int64_t i = 0; i < out.cols; ++i) o[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
    }
  }

  void gelu(Tensor x, Tensor out) override {
    assert(is_f32(x) && is_f32(out) && x.cols == out.cols);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < out.rows; ++r) {
      const float* in = x.row<float>(r);
      float* o = out.row<float>(r);
      for (int64_t i = 0; i < out.cols; ++i) {
        o[i] = 0.5f * in[i] * (1.0f + std::erf(in[i] * static_cast<float>(M_SQRT1_2)));
      }
    }
  }

  void add(Tensor a, Tensor b, Tensor out) override {
    assert(is_f32(a) && is_f32(b) && is_f32(out));
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < out.rows; ++r) {
      const float* x = a.row<float>(r);
      const float* y = b.row<float>(r);
      float* o = out.row<float>(r);
      for (int64_t i = 0; i < out.cols; ++i) o[i] = x[i] + y[i];
    }
  }

  void copy(Tensor src, Tensor dst) override {
    assert(src.dtype == dst.dtype && src.rows == dst.rows && src.cols == dst.cols);
    const size_t row_bytes = static_cast<size_t>(src.cols) * dtype_size(src.dtype);
    for (int64_t r = 0; r < src.rows; ++r) {
      std::memcpy(dst.row_address(r), src.row_address(r), row_bytes);
    }
  }
};

size_t CpuBackend::free_memory_bytes() const {
  // MemAvailable from /proc/meminfo, in kB.
  FILE* meminfo = std::fopen("/proc/meminfo", "r");
  if (meminfo == nullptr) return 0;
  char line[256];
  size_t kilobytes = 0;
  while (std::fgets(line, sizeof line, meminfo) != nullptr) {
    if (std::sscanf(line, "MemAvailable: %zu kB", &kilobytes) == 1) break;
  }
  std::fclose(meminfo);
  return kilobytes * 1024;
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() {
  return std::make_unique<CpuBackend>();
}

void set_cpu_threads(int threads) {
  if (threads <= 0) return;
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

}  // namespace runahead
