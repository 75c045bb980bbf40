// Single-GPU time to first token: a random-weight model (weights generated on the GPU) runs a
// prefill of N tokens and returns the last token's logits to the host. Also times the pieces
// of one layer (attention, the four matrix products) at the same N, so the gap to the floor
// can be placed. `--matmul-autotune both` runs the whole table with cuBLASLt's heuristic
// matmul algorithms and again with autotuned ones, in one process on one GPU.
#include <cuda_runtime_api.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "bench/ttft/op_timing_backend.h"
#include "core/statistics.h"
#include "kernels/cuda/cuda_backend.h"
#include "model/kv_cache.h"
#include "model/random_model.h"
#include "model/transformer.h"

namespace runahead {
namespace {

// Times `work` (enqueued on the backend's stream) with CUDA events; median of `repeats` in ms.
template <typename Work>
double time_on_stream(CudaBackend& gpu, int warmup, int repeats, Work&& work) {
  for (int i = 0; i < warmup; ++i) work();
  cudaEvent_t start;
  cudaEvent_t stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    cudaEventRecord(start, gpu.stream());
    work();
    cudaEventRecord(stop, gpu.stream());
    cudaEventSynchronize(stop);
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, start, stop);
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return median(times);
}

Result<Tensor> random_matrix(CudaBackend& gpu, std::vector<Buffer>& keep, int64_t rows,
                             int64_t cols, uint64_t seed) {
  auto buffer = gpu.allocate(static_cast<size_t>(rows * cols) * 2);
  if (!buffer) return buffer.error();
  const Tensor t = buffer->view(DType::kBF16, rows, cols);
  RUNAHEAD_RETURN_IF_ERROR(gpu.fill_uniform(t, seed, 1.0f, 0.0f));
  keep.push_back(std::move(buffer).value());
  return t;
}

struct LayerProfile {
  double attention_ms = 0;  // the backend's default kernel choice
  double attention_tflops = 0;
  // Each tensor-core kernel: wgmma, mma.sync with 4 and 8 warps.
  double attention_ms_by_kernel[3] = {0, 0, 0};
  double matmul_ms = 0;
  double matmul_tflops = 0;
};

// One layer's attention and matrix products at n tokens, on random activations.
Result<LayerProfile> profile_layer(const ModelConfig& c, const ModelWeights& w, CudaBackend& gpu,
                                   int64_t n) {
  std::vector<Buffer> keep;
  RUNAHEAD_ASSIGN_OR_RETURN(Tensor qkv, random_matrix(gpu, keep, n, c.qkv_dim(), 11));
  RUNAHEAD_ASSIGN_OR_RETURN(Tensor kv, random_matrix(gpu, keep, n, 2 * c.kv_dim(), 12));
  RUNAHEAD_ASSIGN_OR_RETURN(Tensor attn, random_matrix(gpu, keep, n, c.q_dim(), 13));
  RUNAHEAD_ASSIGN_OR_RETURN(Tensor hidden, random_matrix(gpu, keep, n, c.hidden, 14));
  const int64_t gate_up_cols = w.layers[0].w_gate_up.rows;
  RUNAHEAD_ASSIGN_OR_RETURN(Tensor gate_up, random_matrix(gpu, keep, n, gate_up_cols, 15));
  RUNAHEAD_ASSIGN_OR_RETURN(Tensor act, random_matrix(gpu, keep, n, c.ffn_hidden, 16));
  const AttentionArgs args{.q = qkv.cols_slice(0, c.q_dim()),
                           .k = kv.cols_slice(0, c.kv_dim()),
                           .v = kv.cols_slice(c.kv_dim(), 2 * c.kv_dim()),
                           .out = attn,
                           .n_heads = c.n_heads,
                           .n_kv_heads = c.n_kv_heads,
                           .head_dim = c.head_dim,
                           .q_begin = 0,
                           .scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim))};
  LayerProfile p;
  const AttentionKernel kernels[3] = {AttentionKernel::kWgmma, AttentionKernel::kMma,
                                      AttentionKernel::kMma};
  for (int i = 0; i < 3; ++i) {
    gpu.set_attention_kernel(kernels[i]);
    gpu.set_attention_warps(i == 1 ? 4 : 8);
    p.attention_ms_by_kernel[i] = time_on_stream(gpu, 2, 5, [&] { gpu.attention(args); });
  }
  gpu.set_attention_kernel(AttentionKernel::kAuto);
  gpu.set_attention_warps(0);
  p.attention_ms = time_on_stream(gpu, 2, 5, [&] { gpu.attention(args); });
  const double pairs = static_cast<double>(n) * static_cast<double>(n + 1) / 2.0;
  p.attention_tflops = 4.0 * pairs * c.q_dim() / (p.attention_ms * 1e-3) / 1e12;
  const LayerWeights& l = w.layers[0];
  p.matmul_ms = time_on_stream(gpu, 2, 5, [&] {
    gpu.matmul(hidden, l.wqkv, l.bqkv, qkv);
    gpu.matmul(attn, l.wo, l.bo, hidden);
    gpu.matmul(hidden, l.w_gate_up, l.b_up, gate_up);
    gpu.matmul(act, l.w_down, l.b_down, hidden);
  });
  const double matmul_flops =
      2.0 * static_cast<double>(n) *
      (static_cast<double>(c.hidden) * c.qkv_dim() + static_cast<double>(c.q_dim()) * c.hidden +
       static_cast<double>(gate_up_cols) * c.hidden + static_cast<double>(c.ffn_hidden) * c.hidden);
  p.matmul_tflops = matmul_flops / (p.matmul_ms * 1e-3) / 1e12;
  RUNAHEAD_RETURN_IF_ERROR(gpu.synchronize());
  return p;
}

int run(int argc, char** argv) {
  CLI::App app{"Single-GPU time to first token with random weights generated on the GPU"};
  std::string preset = "llama2-7b";
  std::vector<int64_t> lengths = {4096, 16384};
  int device = 0;
  int warmup = 1;
  int repeats = 3;
  bool profile = true;
  std::string json_path;
  std::string autotune = "off";
  app.add_option("--model", preset, "model preset (model/random_model.h)");
  app.add_option("--tokens", lengths, "prompt lengths")->delimiter(',');
  app.add_option("--device", device, "GPU index");
  app.add_option("--warmup", warmup,
                 "untimed runs per length (with matmul autotuning on, the tuning happens in "
                 "the first)");
  app.add_option("--repeats", repeats, "timed runs per length (the median is reported)");
  app.add_flag("!--no-profile", profile, "skip the per-layer attention/matmul timing");
  app.add_option("--json", json_path, "append one JSON line per length to this file");
  app.add_option("--matmul-autotune", autotune,
                 "time cuBLASLt's candidate algorithms for prefill-sized matrix products (on), "
                 "take its first heuristic choice (off, the runtime's default), or run the whole "
                 "table once each, off then on, in this process on this GPU (both)")
      ->check(CLI::IsMember({"on", "off", "both"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto config = preset_config(preset);
  if (!config) {
    std::cerr << config.error().message << "\n";
    return 2;
  }
  auto created = CudaBackend::create(device);
  if (!created) {
    std::cerr << created.error().message << "\n";
    return 1;
  }
  CudaBackend& gpu = **created;
  const auto& prop = gpu.properties();
  std::printf("device %s: %s, %d SMs, %.0f GiB\n", gpu.name().c_str(), prop.name,
              prop.multiProcessorCount, static_cast<double>(prop.totalGlobalMem) / (1 << 30));

  auto t0 = std::chrono::steady_clock::now();
  auto weights = generate_random_weights(*config, gpu, 1234, random_weight_scale(*config));
  if (!weights) {
    std::cerr << weights.error().message << "\n";
    return 1;
  }
  std::printf("random %s weights on the GPU in %.2f s (%.2f B parameters)\n", preset.c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
              static_cast<double>(config->parameter_count()) / 1e9);
  const int64_t longest = *std::max_element(lengths.begin(), lengths.end());
  Transformer model(*weights, gpu);
  auto workspace = model.make_workspace(longest);
  auto cache = KvCache::create(gpu, *config, longest);
  if (!workspace || !cache) {
    std::cerr << (workspace ? cache.error().message : workspace.error().message) << "\n";
    return 1;
  }

  // One table per autotune mode; the label line says which (with both, the same prompts and
  // weights run twice on this GPU).
  const auto run_table = [&](bool autotune_on) -> int {
    gpu.set_matmul_autotune(autotune_on);
    std::printf("matmul autotune: %s\n", autotune_on ? "on" : "off");
    std::printf("%-8s %10s %10s %8s %12s %12s %12s %12s\n", "tokens", "ttft_ms", "min_ms", "mfu",
                "attn_ms/l", "attn_TF/s", "matmul_ms/l", "matmul_TF/s");
    for (int64_t n : lengths) {
      std::mt19937_64 rng(static_cast<uint64_t>(n));
      std::uniform_int_distribution<int32_t> id(0, config->vocab_size - 1);
      std::vector<int32_t> prompt(static_cast<size_t>(n));
      for (int32_t& t : prompt) t = id(rng);
      std::vector<float> logits;
      std::vector<double> times;
      for (int i = 0; i < warmup + repeats; ++i) {
        const auto start = std::chrono::steady_clock::now();
        Status status = model.prefill_slice(prompt, 0, *workspace, *cache);
        if (status) status = model.last_token_logits(*workspace, logits);
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count();
        if (!status) {
          std::cerr << "prefill of " << n << " tokens: " << status.to_string() << "\n";
          return 1;
        }
        if (i >= warmup) times.push_back(ms);
      }
      const double ttft = median(times);
      const double best = *std::min_element(times.begin(), times.end());
      const double flops = config->prefill_flops(0, n);
      // Model FLOPs utilization against the dense bf16 peak of an H100/H200 SXM (989 TFLOP/s).
      const double mfu = flops / (ttft * 1e-3) / 989e12;
      LayerProfile p;
      if (profile) {
        auto measured = profile_layer(*config, *weights, gpu, n);
        if (!measured) {
          std::cerr << measured.error().to_string() << "\n";
          return 1;
        }
        p = *measured;
      }
      std::printf("%-8lld %10.1f %10.1f %7.1f%% %12.3f %12.1f %12.3f %12.1f\n",
                  static_cast<long long>(n), ttft, best, 100.0 * mfu, p.attention_ms,
                  p.attention_tflops, p.matmul_ms, p.matmul_tflops);
      if (profile) {
        const double flop_ms = p.attention_tflops * p.attention_ms;  // TF/s x ms
        std::printf(
            "         attention per layer (TF/s): wgmma %.3f ms (%.0f), mma4 %.3f ms (%.0f), "
            "mma8 %.3f ms (%.0f)\n",
            p.attention_ms_by_kernel[0], flop_ms / p.attention_ms_by_kernel[0],
            p.attention_ms_by_kernel[1], flop_ms / p.attention_ms_by_kernel[1],
            p.attention_ms_by_kernel[2], flop_ms / p.attention_ms_by_kernel[2]);
        // GPU time per kind of operation over one whole prefill.
        OpTimingBackend timing(gpu);
        Transformer timed_model(*weights, timing);
        Status status = timed_model.prefill_slice(prompt, 0, *workspace, *cache);
        if (status) status = timed_model.last_token_logits(*workspace, logits);
        if (!status) {
          std::cerr << "timed prefill of " << n << " tokens: " << status.to_string() << "\n";
          return 1;
        }
        std::vector<std::pair<double, std::string>> by_time;
        double total = 0.0;
        for (const auto& [op, ms] : timing.totals()) {
          by_time.emplace_back(ms, op);
          total += ms;
        }
        std::sort(by_time.rbegin(), by_time.rend());
        std::printf("         GPU time by operation (sum %.1f ms of %.1f ms TTFT):\n", total, ttft);
        for (const auto& [ms, op] : by_time) {
          std::printf("           %-24s %9.2f ms %5.1f%%\n", op.c_str(), ms, 100.0 * ms / ttft);
        }
      }
      std::fflush(stdout);
      if (!json_path.empty()) {
        std::ofstream json(json_path, std::ios::app);
        json << "{\"impl\":\"runahead\",\"model\":\"" << preset << "\",\"matmul_autotune\":\""
             << (autotune_on ? "on" : "off") << "\",\"device\":\"" << prop.name
             << "\",\"tokens\":" << n << ",\"ttft_ms\":" << ttft << ",\"min_ms\":" << best
             << ",\"prefill_tflop\":" << flops / 1e12 << ",\"mfu_989\":" << mfu
             << ",\"attention_ms_per_layer\":" << p.attention_ms
             << ",\"attention_tflops\":" << p.attention_tflops
             << ",\"attention_ms_wgmma\":" << p.attention_ms_by_kernel[0]
             << ",\"attention_ms_mma4\":" << p.attention_ms_by_kernel[1]
             << ",\"attention_ms_mma8\":" << p.attention_ms_by_kernel[2]
             << ",\"matmul_ms_per_layer\":" << p.matmul_ms
             << ",\"matmul_tflops\":" << p.matmul_tflops << ",\"layers\":" << config->n_layers
             << "}\n";
      }
    }
    return 0;
  };
  for (const bool autotune_on : {false, true}) {
    if (autotune != "both" && autotune_on != (autotune == "on")) continue;
    if (const int rc = run_table(autotune_on); rc != 0) return rc;
  }
  return 0;
}

}  // namespace
}  // namespace runahead

int main(int argc, char** argv) {
  return runahead::run(argc, argv);
}
