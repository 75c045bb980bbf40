// Llama GGUF files onto the model definition: metadata to config, tensor names and shapes,
// and the rotary layout. A random Hugging Face-layout model written as GGUF (Q and K rows
// permuted as llama.cpp's converter does) must give the same logits when loaded back with
// interleaved rotary pairs.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "model/gguf.h"
#include "model/gguf_model.h"
#include "tests/gguf/gguf_builder.h"
#include "tests/support/random_model.h"

namespace runahead {
namespace {

using testing::GgufBuilder;

std::vector<float> to_f32(const HostTensor& t) {
  std::vector<float> out(static_cast<size_t>(t.rows * t.cols));
  convert_to_f32(t.dtype, t.data, out.data(), out.size());
  return out;
}

// llama.cpp convert_hf_to_gguf: rows of each head reordered so rotary pairs sit side by side.
std::vector<float> permute_rows(const std::vector<float>& w, int64_t rows, int64_t cols,
                                int heads) {
  const int64_t head_dim = rows / heads;
  const int64_t half = head_dim / 2;
  std::vector<float> out(w.size());
  for (int h = 0; h < heads; ++h) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t from = h * head_dim + j * half + i;
        const int64_t to = h * head_dim + 2 * i + j;
        std::copy_n(w.begin() + from * cols, cols, out.begin() + to * cols);
      }
    }
  }
  return out;
}

struct Overrides {
  int ffn_length = -1;  // llama.feed_forward_length to write (-1: the real one)
  std::string architecture = "llama";
  uint32_t q_type = 0;            // type id written for blk.0.attn_q.weight
  std::vector<float> rope_freqs;  // written as rope_freqs.weight when not empty
};

std::string gguf_from_host(const HostModel& host, const Overrides& o = {}) {
  const ModelConfig& c = host.config;
  GgufBuilder b;
  b.str("general.architecture", o.architecture);
  b.str("general.name", "tiny");
  b.u32("llama.block_count", static_cast<uint32_t>(c.n_layers));
  b.u32("llama.context_length", static_cast<uint32_t>(c.max_positions));
  b.u32("llama.embedding_length", static_cast<uint32_t>(c.hidden));
  b.u32("llama.feed_forward_length",
        static_cast<uint32_t>(o.ffn_length > 0 ? o.ffn_length : c.ffn_hidden));
  b.u32("llama.attention.head_count", static_cast<uint32_t>(c.n_heads));
  b.u32("llama.attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads));
  b.u32("llama.attention.key_length", static_cast<uint32_t>(c.head_dim));
  b.u32("llama.rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  b.f32("llama.rope.freq_base", c.rope_theta);
  b.f32("llama.attention.layer_norm_rms_epsilon", c.norm_eps);
  b.u32("tokenizer.ggml.bos_token_id", 1);
  b.u32("tokenizer.ggml.eos_token_id", 2);
  auto put = [&](const std::string& gguf_name, const std::string& name, int permute_heads = 0) {
    const HostTensor& t = *host.find(name);
    std::vector<float> values = to_f32(t);
    if (permute_heads > 0) values = permute_rows(values, t.rows, t.cols, permute_heads);
    const std::vector<uint64_t> dims =
        t.rows == 1
            ? std::vector<uint64_t>{static_cast<uint64_t>(t.cols)}
            : std::vector<uint64_t>{static_cast<uint64_t>(t.cols), static_cast<uint64_t>(t.rows)};
    b.tensor_f32(gguf_name, dims, values);
  };
  put("token_embd.weight", "token_embedding");
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string g = "blk." + std::to_string(l) + ".";
    const std::string n = "layers." + std::to_string(l) + ".";
    put(g + "attn_norm.weight", n + "attn_norm");
    if (l == 0 && o.q_type != 0) {
      const HostTensor& q = *host.find(n + "wq");
      b.tensor(g + "attn_q.weight", {static_cast<uint64_t>(q.cols), static_cast<uint64_t>(q.rows)},
               o.q_type, std::string(static_cast<size_t>(q.rows * q.cols * 4), '\0'));
    } else {
      put(g + "attn_q.weight", n + "wq", c.n_heads);
    }
    put(g + "attn_k.weight", n + "wk", c.n_kv_heads);
    put(g + "attn_v.weight", n + "wv");
    put(g + "attn_output.weight", n + "wo");
    put(g + "ffn_norm.weight", n + "mlp_norm");
    put(g + "ffn_gate.weight", n + "w_gate");
    put(g + "ffn_up.weight", n + "w_up");
    put(g + "ffn_down.weight", n + "w_down");
  }
  put("output_norm.weight", "final_norm");
  put("output.weight", "lm_head");
  if (!o.rope_freqs.empty()) {
    b.tensor_f32("rope_freqs.weight", {o.rope_freqs.size()}, o.rope_freqs);
  }
  return b.build();
}

std::vector<float> prompt_logits(const HostModel& host, const std::vector<int32_t>& prompt) {
  testing::LoadedModel model = testing::load_on_cpu(host);
  EXPECT_NE(model.transformer, nullptr);
  if (model.transformer == nullptr) return {};
  auto ws = model.transformer->make_workspace(static_cast<int64_t>(prompt.size()));
  auto cache = KvCache::create(*model.backend, host.config, static_cast<int64_t>(prompt.size()));
  EXPECT_TRUE(ws && cache);
  EXPECT_TRUE(model.transformer->prefill_slice(prompt, 0, *ws, *cache).is_ok());
  std::vector<float> logits;
  EXPECT_TRUE(model.transformer->last_token_logits(*ws, logits).is_ok());
  return logits;
}

TEST(GgufModel, MapsMetadataAndTensors) {
  const ModelConfig c = testing::tiny_llama_config();
  const HostModel original = testing::random_host_model(c, 11);
  const std::string path = testing::write_temp_file("tiny.gguf", gguf_from_host(original));
  auto loaded = load_gguf_model(path);
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  const ModelConfig& g = loaded->config;
  EXPECT_EQ(g.architecture, Architecture::kLlama);
  EXPECT_EQ(g.n_layers, c.n_layers);
  EXPECT_EQ(g.hidden, c.hidden);
  EXPECT_EQ(g.n_heads, c.n_heads);
  EXPECT_EQ(g.n_kv_heads, c.n_kv_heads);
  EXPECT_EQ(g.head_dim, c.head_dim);
  EXPECT_EQ(g.ffn_hidden, c.ffn_hidden);
  EXPECT_EQ(g.vocab_size, c.vocab_size);
  EXPECT_EQ(g.max_positions, c.max_positions);
  EXPECT_FLOAT_EQ(g.rope_theta, c.rope_theta);
  EXPECT_EQ(g.rope_style, RopeStyle::kInterleaved);
  EXPECT_FALSE(g.tied_embeddings);
  EXPECT_EQ(g.bos_token, 1);
  EXPECT_EQ(g.eos_token, 2);
  const HostTensor* wk = loaded->find("layers.1.wk");
  ASSERT_NE(wk, nullptr);
  EXPECT_EQ(wk->rows, c.kv_dim());
  EXPECT_EQ(wk->cols, c.hidden);
  EXPECT_NE(wk->origin.find("blk.1.attn_k.weight"), std::string::npos);
  // load_model recognizes the file by its magic.
  EXPECT_TRUE(load_model(path));
}

TEST(GgufModel, PermutedRotaryLayoutGivesTheSameLogits) {
  const ModelConfig c = testing::tiny_llama_config();
  const HostModel original = testing::random_host_model(c, 5);
  auto loaded = load_gguf_model(testing::write_temp_file("rope.gguf", gguf_from_host(original)));
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  const std::vector<int32_t> prompt = testing::random_tokens(23, c.vocab_size, 9);
  const std::vector<float> want = prompt_logits(original, prompt);
  const std::vector<float> got = prompt_logits(*loaded, prompt);
  ASSERT_EQ(got.size(), want.size());
  double diff = 0.0;
  double norm = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    diff += (double{got[i]} - want[i]) * (double{got[i]} - want[i]);
    norm += double{want[i]} * want[i];
  }
  EXPECT_LT(std::sqrt(diff / norm), 1e-5);
}

TEST(GgufModel, MetadataThatContradictsShapesNamesTheTensor) {
  const HostModel original = testing::random_host_model(testing::tiny_llama_config(), 3);
  Overrides o;
  o.ffn_length = 64;
  auto loaded =
      load_gguf_model(testing::write_temp_file("bad_ffn.gguf", gguf_from_host(original, o)));
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message.find("blk.0.ffn_gate.weight"), std::string::npos)
      << loaded.error().message;
}

TEST(GgufModel, UnsupportedQuantizationNamesTensorAndType) {
  const HostModel original = testing::random_host_model(testing::tiny_llama_config(), 3);
  Overrides o;
  o.q_type = 7;  // Q5_1: rows of 36 are not whole blocks, so the file itself is refused
  auto loaded = load_gguf_model(testing::write_temp_file("q51.gguf", gguf_from_host(original, o)));
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message.find("blk.0.attn_q.weight"), std::string::npos);
  EXPECT_NE(loaded.error().message.find("Q5_1"), std::string::npos);
}

// Llama-3.1's rope scaling as llama.cpp's converter writes it: one divisor per frequency.
std::vector<float> llama3_rope_divisors(const ModelConfig& c, float factor) {
  const double low_wavelen = 8192.0 / 1.0;
  const double high_wavelen = 8192.0 / 4.0;
  std::vector<float> divisors;
  for (int i = 0; i < c.head_dim / 2; ++i) {
    const double freq = std::pow(static_cast<double>(c.rope_theta), -2.0 * i / c.head_dim);
    const double wavelen = 2.0 * std::numbers::pi / freq;
    if (wavelen < high_wavelen) {
      divisors.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      divisors.push_back(factor);
    } else {
      const double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
      divisors.push_back(static_cast<float>(1.0 / ((1.0 - smooth) / factor + smooth)));
    }
  }
  return divisors;
}

TEST(GgufModel, Llama3RopeFactorsBecomeRopeScaling) {
  const ModelConfig c = testing::tiny_llama_config();
  const HostModel original = testing::random_host_model(c, 3);
  Overrides o;
  o.rope_freqs = llama3_rope_divisors(c, 8.0f);
  auto loaded =
      load_gguf_model(testing::write_temp_file("llama3.gguf", gguf_from_host(original, o)));
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  EXPECT_EQ(loaded->config.rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_FLOAT_EQ(loaded->config.rope_scaling.factor, 8.0f);

  o.rope_freqs.assign(o.rope_freqs.size(), 2.0f);  // not the llama3 shape
  auto other = load_gguf_model(testing::write_temp_file("rope2.gguf", gguf_from_host(original, o)));
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message.find("rope_freqs.weight"), std::string::npos);
}

TEST(GgufModel, OtherArchitecturesAreRefused) {
  const HostModel original = testing::random_host_model(testing::tiny_llama_config(), 3);
  Overrides o;
  o.architecture = "gpt2";
  auto loaded = load_gguf_model(testing::write_temp_file("gpt2.gguf", gguf_from_host(original, o)));
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message.find("general.architecture"), std::string::npos);
}

}  // namespace
}  // namespace runahead
