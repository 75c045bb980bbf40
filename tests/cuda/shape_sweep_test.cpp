// The bf16 GPU model against the fp32 CPU model over randomly drawn shapes: head sizes, query
// heads per K/V head, hidden sizes that are not multiples of 64, Llama and Falcon variants,
// prompt lengths around the kernels' tile edges, one slice or uneven slices. Each config
// compares, row by row, the K/V cache of every layer and the last slice's hidden states after
// the prefill, the prefill's logits, and the logits of 32 decode steps fed the reference's
// greedy tokens (teacher forcing, so that one flipped token does not hide the steps after it).
//
// Every config prints its seed; RUNAHEAD_SWEEP_SEED=S replays config S alone, and
// RUNAHEAD_SWEEP_CONFIGS=N (default 84: each head size with each head ratio twice) sets how
// many run. RUNAHEAD_SWEEP_FIRST_SEED moves the whole draw.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "model/kv_cache.h"
#include "model/random_model.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "tests/cuda/twin_tensor.h"
#include "tests/support/numeric.h"
#include "tests/support/random_model.h"

namespace runahead {
namespace {

// Bounds per quantity, each the worst row's max |gpu - cpu| over that row's max |cpu|. bf16
// rounds every stored activation to 2^-9 relative; two layers of products over a few hundred
// terms and a softmax over up to 4k keys stay well inside these, while a wrong query row, a
// wrong tile or a wrong head gives errors of order one.
constexpr double kCacheBound = 5e-2;   // K/V rows of every layer
constexpr double kHiddenBound = 8e-2;  // residual stream of the last slice after every layer
constexpr double kLogitsBound = 5e-2;  // prefill logits and every decode step's logits
constexpr int kDecodeSteps = 32;

constexpr std::array<int, 7> kHeadDims = {32, 40, 64, 80, 96, 128, 256};
constexpr std::array<int, 6> kGroups = {1, 2, 3, 4, 8, 0};  // 0: one K/V head for all (MQA)
constexpr std::array<int64_t, 9> kPromptLengths = {1, 2, 63, 64, 65, 127, 300, 1000, 4097};

enum class Variant { kLlama, kLlamaRopeScaled, kLlamaTied, kFalconParallel, kFalconSequential };

const char* variant_name(Variant v) {
  switch (v) {
    case Variant::kLlama:
      return "llama";
    case Variant::kLlamaRopeScaled:
      return "llama+llama3-rope";
    case Variant::kLlamaTied:
      return "llama+tied";
    case Variant::kFalconParallel:
      return "falcon-parallel";
    case Variant::kFalconSequential:
      return "falcon-sequential";
  }
  return "?";
}

struct SweepCase {
  uint64_t seed = 0;
  Variant variant = Variant::kLlama;
  ModelConfig config;
  int64_t prompt = 0;
  std::vector<int64_t> cuts;  // slice boundaries, 0 first and prompt last
  // Hugging Face's initialization (every matrix and the embedding normal with std 0.02, norms 1,
  // biases 0: tiny, nearly uniform logits) instead of random_host_model's uniform weights.
  bool hf_init = false;

  std::string describe() const {
    std::string cuts_text;
    for (size_t i = 0; i < cuts.size(); ++i) cuts_text += (i ? "," : "") + std::to_string(cuts[i]);
    char text[320];
    std::snprintf(text, sizeof text,
                  "seed %llu: %s%s%s%s, head_dim %d, %d/%d heads, hidden %d, ffn %d, vocab %d, "
                  "prompt %lld, cuts [%s]",
                  static_cast<unsigned long long>(seed), variant_name(variant),
                  hf_init ? ", hf init" : "", config.qkv_bias ? ", biases" : "",
                  config.rope_style == RopeStyle::kInterleaved ? ", interleaved rope" : "",
                  config.head_dim, config.n_heads, config.n_kv_heads, config.hidden,
                  config.ffn_hidden, config.vocab_size, static_cast<long long>(prompt),
                  cuts_text.c_str());
    return text;
  }
};

uint64_t env_or(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::strtoull(value, nullptr, 10) : fallback;
}

// Case `seed`: the head size and head ratio cycle so that N consecutive seeds cover every pair
// (7 x 6 = 42) N / 42 times; the prompt length cycles through its 9 values independently of
// them; everything else is drawn from the seed.
SweepCase draw_case(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  SweepCase s;
  s.seed = seed;
  const int head_dim = kHeadDims[seed % kHeadDims.size()];
  const int group = kGroups[(seed / kHeadDims.size()) % kGroups.size()];
  // Falcon has one K/V head here, so it takes the MQA cases (two thirds of them); the others
  // go to the Llama variants.
  if (group == 0 && pick(0, 2) != 0) {
    s.variant = pick(0, 1) == 0 ? Variant::kFalconParallel : Variant::kFalconSequential;
  } else {
    s.variant = static_cast<Variant>(pick(0, 2));
  }
  s.prompt = kPromptLengths[seed % kPromptLengths.size()];

  ModelConfig& c = s.config;
  const bool falcon =
      s.variant == Variant::kFalconParallel || s.variant == Variant::kFalconSequential;
  c.architecture = falcon ? Architecture::kFalcon : Architecture::kLlama;
  c.architecture_name = std::string("sweep-") + variant_name(s.variant);
  c.n_layers = 2;
  c.head_dim = head_dim;
  // Larger heads get fewer of them, so every config stays small.
  const int max_kv = head_dim >= 128 ? 2 : 3;
  if (group == 0) {
    c.n_kv_heads = 1;
    c.n_heads = pick(2, head_dim >= 128 ? 6 : 10);
  } else {
    c.n_kv_heads = pick(1, group >= 4 ? 1 : max_kv);
    c.n_heads = c.n_kv_heads * group;
  }
  if (falcon) {
    // Hugging Face's Falcon has hidden = heads x head_dim, and one K/V head in the layout this
    // runtime loads (multi_query).
    c.hidden = c.n_heads * c.head_dim;
    c.norm = NormKind::kLayer;
    c.activation = Activation::kGelu;
    c.parallel_block = s.variant == Variant::kFalconParallel;
    c.ffn_hidden = 4 * c.hidden;
  } else {
    // Llama's hidden size is its own: any even size, mostly not a multiple of 64.
    c.hidden = 2 * pick(40, 200);
    if (c.hidden % 64 == 0) c.hidden += 2;
    c.ffn_hidden = 2 * pick(60, 300) + 1;
  }
  // A quarter of the vocabularies are of real models' size (the LM head and argmax over many
  // columns).
  c.vocab_size = pick(0, 3) == 0 ? pick(32000, 50304) : pick(300, 1300);
  c.max_positions = static_cast<int>(s.prompt) + kDecodeSteps + 1;
  c.norm_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  if (s.variant == Variant::kLlamaRopeScaled) {
    c.rope_theta = 500000.0f;
    c.rope_scaling.type = RopeScaling::Type::kLlama3;
    c.rope_scaling.factor = 8.0f;
    c.rope_scaling.low_freq_factor = 1.0f;
    c.rope_scaling.high_freq_factor = 4.0f;
    c.rope_scaling.original_max_positions = 256;
  }
  c.tied_embeddings = s.variant == Variant::kLlamaTied;
  // Biases (Falcon's `bias`, Llama's `attention_bias`) and the interleaved rotary layout of GGUF
  // checkpoints, each in a quarter of the cases.
  if (pick(0, 3) == 0) {
    c.qkv_bias = c.out_bias = true;
    c.mlp_bias = falcon;
  }
  if (pick(0, 3) == 0) c.rope_style = RopeStyle::kInterleaved;
  s.hf_init = pick(0, 1) == 0;

  // Half the cases prefill in one slice, half in two to four uneven ones.
  s.cuts = {0};
  const int slices = std::min<int>(static_cast<int>(s.prompt), pick(0, 1) == 0 ? 1 : pick(2, 4));
  std::vector<int64_t> inner;
  while (static_cast<int>(inner.size()) < slices - 1) {
    const auto cut = std::uniform_int_distribution<int64_t>(1, s.prompt - 1)(rng);
    if (std::find(inner.begin(), inner.end(), cut) == inner.end()) inner.push_back(cut);
  }
  std::sort(inner.begin(), inner.end());
  s.cuts.insert(s.cuts.end(), inner.begin(), inner.end());
  s.cuts.push_back(s.prompt);
  return s;
}

// Hugging Face's initialization of a fresh model: norm weights 1, biases 0, everything else
// normal with std 0.02.
HostModel hf_style_host_model(const ModelConfig& c, uint64_t seed) {
  HostModel model = testing::random_host_model(c, seed, 0.1f);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (auto& [name, tensor] : model.tensors) {
    const bool norm = name.find("norm") != std::string::npos;
    const bool bias =
        norm ? name.find("bias") != std::string::npos : name.find(".b") != std::string::npos;
    auto values =
        std::make_shared<std::vector<float>>(static_cast<size_t>(tensor.rows * tensor.cols));
    for (float& v : *values) v = bias ? 0.0f : norm ? 1.0f : normal(rng);
    tensor = HostTensor{DType::kF32, tensor.rows, tensor.cols, values->data(), "hf-init:" + name};
    model.keepalive.push_back(values);
  }
  return model;
}

// One side of the comparison: a backend, the model on it, a cache and a workspace.
struct Side {
  std::unique_ptr<ModelWeights> weights;
  std::unique_ptr<Transformer> transformer;
  Workspace workspace;
  KvCache cache;
};

Side load_side(const HostModel& host, Backend& backend, int64_t widest, int64_t positions) {
  Side side;
  auto weights = upload_weights(host, backend);
  EXPECT_TRUE(weights.is_ok()) << weights.error().to_string();
  if (!weights) return side;
  side.weights = std::make_unique<ModelWeights>(std::move(weights).value());
  side.transformer = std::make_unique<Transformer>(*side.weights, backend);
  auto ws = side.transformer->make_workspace(widest);
  auto cache = KvCache::create(backend, host.config, positions);
  EXPECT_TRUE(ws.is_ok() && cache.is_ok());
  if (!ws || !cache) {
    side.transformer.reset();
    return side;
  }
  side.workspace = std::move(ws).value();
  side.cache = std::move(cache).value();
  return side;
}

std::vector<float> read_host(Backend& backend, const Tensor& t) {
  std::vector<float> values(static_cast<size_t>(t.elements()));
  if (t.dtype == DType::kF32) {
    EXPECT_TRUE(backend.copy_to_host(t, values.data()).is_ok());
    return values;
  }
  std::vector<uint16_t> narrow(values.size());
  EXPECT_TRUE(backend.copy_to_host(t, narrow.data()).is_ok());
  convert_to_f32(t.dtype, narrow.data(), values.data(), values.size());
  return values;
}

// The worst errors met by quantity over the whole sweep, printed at the end.
struct Worst {
  double cache = 0, hidden = 0, prefill_logits = 0, decode_logits = 0;
  std::string cache_at, hidden_at, prefill_at, decode_at;
};
Worst& worst() {
  static Worst w;
  return w;
}
void note(double error, double& slot, std::string& at, const std::string& where) {
  if (error > slot) {
    slot = error;
    at = where;
  }
}

class CudaShapeSweepTest : public testing::CudaTest {
 protected:
  void SetUp() override { testing::CudaTest::SetUp(); }

  static void TearDownTestSuite() {
    const Worst& w = worst();
    std::printf("[ worst    ] K/V rows        %.3e (bound %.0e) at %s\n", w.cache, kCacheBound,
                w.cache_at.c_str());
    std::printf("[ worst    ] hidden rows     %.3e (bound %.0e) at %s\n", w.hidden, kHiddenBound,
                w.hidden_at.c_str());
    std::printf("[ worst    ] prefill logits  %.3e (bound %.0e) at %s\n", w.prefill_logits,
                kLogitsBound, w.prefill_at.c_str());
    std::printf("[ worst    ] decode logits   %.3e (bound %.0e) at %s\n", w.decode_logits,
                kLogitsBound, w.decode_at.c_str());
  }

  // Runs one case; returns whether it passed (failures are also reported through gtest).
  bool run_case(const SweepCase& s);
};

bool CudaShapeSweepTest::run_case(const SweepCase& s) {
  const std::string what = s.describe();
  SCOPED_TRACE(what);
  std::printf("[ sweep    ] %s\n", what.c_str());
  const ModelConfig& c = s.config;
  EXPECT_TRUE(c.validate().is_ok()) << c.validate().to_string();
  const float scale = std::min(0.2f, 1.0f / std::sqrt(static_cast<float>(c.hidden)));
  const HostModel host =
      s.hf_init ? hf_style_host_model(c, s.seed) : testing::random_host_model(c, s.seed, scale);
  const std::vector<int32_t> prompt =
      testing::random_tokens(static_cast<int>(s.prompt), c.vocab_size, s.seed ^ 0x5eedu);
  int64_t widest = 1;
  for (size_t i = 0; i + 1 < s.cuts.size(); ++i)
    widest = std::max(widest, s.cuts[i + 1] - s.cuts[i]);
  const int64_t positions = s.prompt + kDecodeSteps;

  // The reference prefills in one slice: slicing is part of what the GPU side is checked for.
  Side cpu = load_side(host, *cpu_, s.prompt, positions);
  Side gpu = load_side(host, *gpu_, widest, positions);
  if (!cpu.transformer || !gpu.transformer) return false;
  EXPECT_TRUE(cpu.transformer->prefill_slice(prompt, 0, cpu.workspace, cpu.cache).is_ok());
  for (size_t i = 0; i + 1 < s.cuts.size(); ++i) {
    const std::span<const int32_t> slice(prompt.data() + s.cuts[i],
                                         static_cast<size_t>(s.cuts[i + 1] - s.cuts[i]));
    const Status status =
        gpu.transformer->prefill_slice(slice, s.cuts[i], gpu.workspace, gpu.cache);
    EXPECT_TRUE(status.is_ok()) << status.to_string();
    if (!status) return false;
  }

  bool passed = true;
  auto check = [&](double error, int64_t row, double bound, double& slot, std::string& at,
                   const std::string& quantity) {
    std::printf("[ sweep    ]   %-52s %.3e (row %lld)\n", quantity.c_str(), error,
                static_cast<long long>(row));
    note(error, slot, at, "seed " + std::to_string(s.seed) + " " + quantity);
    if (error < bound) return;
    passed = false;
    ADD_FAILURE() << quantity << ": worst row " << row << " has error " << error << " (bound "
                  << bound << ")";
  };

  const int64_t kv_cols = 2 * int64_t{c.kv_dim()};
  for (int layer = 0; layer < c.n_layers; ++layer) {
    const testing::RowError e =
        testing::worst_row_error(read_host(*gpu_, gpu.cache.block(layer, 0, s.prompt)),
                                 read_host(*cpu_, cpu.cache.block(layer, 0, s.prompt)), kv_cols);
    check(e.error, e.row, kCacheBound, worst().cache, worst().cache_at,
          "layer " + std::to_string(layer) + " K/V after prefill");
  }
  // The last slice's rows of the residual stream: the last layer's attention of each of its
  // queries, which the cache does not show.
  const int64_t last_begin = s.cuts[s.cuts.size() - 2];
  const int64_t last_rows = s.prompt - last_begin;
  {
    const testing::RowError e = testing::worst_row_error(
        read_host(*gpu_, gpu.workspace.hidden.rows_slice(0, last_rows)),
        read_host(*cpu_, cpu.workspace.hidden.rows_slice(last_begin, s.prompt)), c.hidden);
    check(e.error, last_begin + e.row, kHiddenBound, worst().hidden, worst().hidden_at,
          "hidden states of the last slice (row = position)");
  }

  std::vector<float> want;
  std::vector<float> got;
  EXPECT_TRUE(cpu.transformer->last_token_logits(cpu.workspace, want).is_ok());
  EXPECT_TRUE(gpu.transformer->last_token_logits(gpu.workspace, got).is_ok());
  {
    const testing::RowError e = testing::worst_row_error(got, want, c.vocab_size);
    check(e.error, e.row, kLogitsBound, worst().prefill_logits, worst().prefill_at,
          "prefill logits");
  }

  // Decode: both sides take the reference's greedy token, step after step.
  double decode_worst = 0.0;
  int decode_worst_step = -1;
  int32_t token = argmax(want);
  for (int step = 0; step < kDecodeSteps; ++step) {
    const int64_t position = s.prompt + step;
    const std::span<const int32_t> one(&token, 1);
    EXPECT_TRUE(cpu.transformer->prefill_slice(one, position, cpu.workspace, cpu.cache).is_ok());
    const Status status = gpu.transformer->prefill_slice(one, position, gpu.workspace, gpu.cache);
    EXPECT_TRUE(status.is_ok()) << status.to_string();
    if (!status) return false;
    EXPECT_TRUE(cpu.transformer->last_token_logits(cpu.workspace, want).is_ok());
    EXPECT_TRUE(gpu.transformer->last_token_logits(gpu.workspace, got).is_ok());
    const double e = testing::worst_row_error(got, want, c.vocab_size).error;
    // Where the GPU's own greedy choice would differ: the reference's margin there, next to the
    // largest logit error of the step (a flip needs margin <= 2 x that error).
    if (const int32_t mine = argmax(got); mine != argmax(want)) {
      double largest = 0.0;
      for (size_t k = 0; k < want.size(); ++k) {
        largest = std::max(largest, std::abs(double{got[k]} - double{want[k]}));
      }
      std::printf(
          "[ sweep    ]   step %d: greedy %d on the GPU, %d on the CPU; reference margin "
          "%.3e, largest logit error %.3e\n",
          step, mine, argmax(want), double{want[argmax(want)]} - want[mine], largest);
    }
    if (e > decode_worst) {
      decode_worst = e;
      decode_worst_step = step;
    }
    token = argmax(want);
  }
  check(decode_worst, decode_worst_step, kLogitsBound, worst().decode_logits, worst().decode_at,
        "decode logits (row = step)");
  std::printf("[ sweep    ] seed %llu %s\n", static_cast<unsigned long long>(s.seed),
              passed ? "ok" : "FAILED");
  return passed;
}

TEST_F(CudaShapeSweepTest, GpuMatchesCpuReferenceOnRandomShapes) {
  const char* replay = std::getenv("RUNAHEAD_SWEEP_SEED");
  std::vector<uint64_t> seeds;
  if (replay != nullptr && *replay != '\0') {
    seeds.push_back(std::strtoull(replay, nullptr, 10));
  } else {
    const uint64_t first = env_or("RUNAHEAD_SWEEP_FIRST_SEED", 0);
    const uint64_t count = env_or("RUNAHEAD_SWEEP_CONFIGS", 84);
    for (uint64_t i = 0; i < count; ++i) seeds.push_back(first + i);
  }
  int failed = 0;
  std::string failed_seeds;
  for (uint64_t seed : seeds) {
    if (!run_case(draw_case(seed))) {
      ++failed;
      failed_seeds += " " + std::to_string(seed);
    }
  }
  std::printf("[ sweep    ] %zu configs, %d failed%s\n", seeds.size(), failed,
              failed_seeds.empty() ? "" : (": seeds" + failed_seeds).c_str());
  EXPECT_EQ(failed, 0) << "replay one with RUNAHEAD_SWEEP_SEED=S; failed seeds:" << failed_seeds;
}

// The shapes of three Hugging Face checkpoints whose GPU tokens once departed from the
// reference's, with Hugging Face's initialization: Falcon multi-query with 8 heads of 32 and a
// parallel block; Llama multi-query with 4 heads of 64 and llama3 rope scaling; Llama with 6
// query heads of 40 over 2 K/V heads. Each at 37 and 300 prompt tokens, in one slice and three.
TEST_F(CudaShapeSweepTest, CheckpointShapesThatOnceDeparted) {
  std::vector<SweepCase> cases;
  for (const int64_t prompt : {int64_t{37}, int64_t{300}}) {
    for (const bool sliced : {false, true}) {
      for (int shape = 0; shape < 3; ++shape) {
        SweepCase s;
        s.seed = 1000 + static_cast<uint64_t>(cases.size());
        s.hf_init = true;
        s.prompt = prompt;
        s.cuts = sliced ? std::vector<int64_t>{0, prompt / 3, prompt / 2 + 1, prompt}
                        : std::vector<int64_t>{0, prompt};
        ModelConfig& c = s.config;
        c.n_layers = 2;
        c.vocab_size = 32000;
        c.max_positions = 2048;
        if (shape == 0) {
          s.variant = Variant::kFalconParallel;
          c.architecture = Architecture::kFalcon;
          c.n_heads = 8;
          c.n_kv_heads = 1;
          c.head_dim = 32;
          c.hidden = 256;
          c.ffn_hidden = 1024;
          c.norm = NormKind::kLayer;
          c.activation = Activation::kGelu;
          c.parallel_block = true;
        } else if (shape == 1) {
          s.variant = Variant::kLlamaRopeScaled;
          c.n_heads = 4;
          c.n_kv_heads = 1;
          c.head_dim = 64;
          c.hidden = 256;
          c.ffn_hidden = 688;
          c.rope_theta = 500000.0f;
          c.rope_scaling.type = RopeScaling::Type::kLlama3;
          c.rope_scaling.factor = 8.0f;
          c.rope_scaling.original_max_positions = 8192;
        } else {
          s.variant = Variant::kLlama;
          c.n_heads = 6;
          c.n_kv_heads = 2;
          c.head_dim = 40;
          c.hidden = 240;
          c.ffn_hidden = 640;
        }
        c.architecture_name = std::string("checkpoint-") + variant_name(s.variant);
        cases.push_back(s);
      }
    }
  }
  int failed = 0;
  for (const SweepCase& s : cases) failed += run_case(s) ? 0 : 1;
  EXPECT_EQ(failed, 0);
}

// A head size no kernel computes is refused when the weights are loaded, naming the dimension
// and the sizes that are supported, instead of failing (or computing nonsense) at run time.
TEST_F(CudaShapeSweepTest, UnsupportedHeadSizeIsRefusedAtLoad) {
  ModelConfig c = testing::tiny_llama_config();
  c.head_dim = 512;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  const HostModel host = testing::random_host_model(c, 7, 0.05f);
  auto weights = upload_weights(host, *gpu_);
  ASSERT_FALSE(weights.is_ok());
  const std::string message = weights.error().message;
  EXPECT_NE(message.find("head_dim 512"), std::string::npos) << message;
  EXPECT_NE(message.find("256"), std::string::npos) << message;
  auto generated = generate_random_weights(c, *gpu_, 7, 0.05f);
  ASSERT_FALSE(generated.is_ok());
  EXPECT_NE(generated.error().message.find("head_dim 512"), std::string::npos);
}

}  // namespace
}  // namespace runahead
