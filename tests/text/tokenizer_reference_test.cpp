// Token ids against the reference tokenizers: files written by
// tools/reference/make_tokenizer_reference.py with the Hugging Face `tokenizers` package (and
// `sentencepiece` for the SentencePiece model). Covers multilingual text, emoji, whitespace
// runs, code and special tokens, plus decode round trips.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "model/gguf.h"
#include "tests/text/test_paths.h"
#include "text/tokenizer.h"

namespace runahead::text {
namespace {

using nlohmann::json;

json load_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot open " << path;
  return json::parse(in);
}

struct Sample {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<Sample> samples(const json& list) {
  std::vector<Sample> out;
  for (const json& s : list) out.push_back({s.at("text"), s.at("ids").get<std::vector<int32_t>>()});
  return out;
}

void expect_matches_reference(const Tokenizer& tokenizer, const std::vector<Sample>& reference,
                              bool round_trip) {
  ASSERT_FALSE(reference.empty());
  for (const Sample& s : reference) {
    SCOPED_TRACE("text: \"" + s.text + "\"");
    auto ids = tokenizer.encode(s.text);
    ASSERT_TRUE(ids) << ids.error().to_string();
    EXPECT_EQ(*ids, s.ids);
    if (round_trip) {
      // Without the BOS the model may add, the text comes back byte for byte.
      auto plain = tokenizer.encode(s.text, /*add_special=*/false);
      ASSERT_TRUE(plain);
      auto text = tokenizer.decode(*plain, /*skip_special=*/false);
      ASSERT_TRUE(text);
      EXPECT_EQ(*text, s.text);
    }
  }
}

class ReferenceTokenizerJson : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceTokenizerJson, IdsMatchHuggingFace) {
  const std::string name = GetParam();
  auto tokenizer = load_tokenizer_json(testing::text_data(name + ".tokenizer.json"));
  ASSERT_TRUE(tokenizer) << tokenizer.error().to_string();
  const json reference = load_json(testing::text_data("reference_ids.json"));
  expect_matches_reference(**tokenizer, samples(reference.at(name)), true);
}

INSTANTIATE_TEST_SUITE_P(Families, ReferenceTokenizerJson,
                         ::testing::Values("gpt2_style", "llama3_style", "smollm_style"));

// The same trained vocabularies stored as GGUF tokenizer.ggml.* metadata: the pre-tokenizer
// then comes from tokenizer.ggml.pre (smollm, llama-bpe) instead of the JSON description.
class ReferenceGgufVocabulary : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceGgufVocabulary, IdsMatchHuggingFace) {
  const std::string name = GetParam();
  auto file = GgufFile::open(testing::text_data(name + "_vocab.gguf"));
  ASSERT_TRUE(file) << file.error().to_string();
  auto tokenizer = load_gguf_tokenizer(**file);
  ASSERT_TRUE(tokenizer) << tokenizer.error().to_string();
  const json reference = load_json(testing::text_data("reference_ids.json"));
  expect_matches_reference(**tokenizer, samples(reference.at(name)), true);
}

INSTANTIATE_TEST_SUITE_P(Families, ReferenceGgufVocabulary,
                         ::testing::Values("smollm_style", "llama3_style"));

TEST(ReferenceTokenizer, Llama3StyleAddsBosFromTheTemplate) {
  auto tokenizer = load_tokenizer_json(testing::text_data("llama3_style.tokenizer.json"));
  ASSERT_TRUE(tokenizer) << tokenizer.error().to_string();
  EXPECT_EQ((*tokenizer)->bos_token(), 0);
  auto with = (*tokenizer)->encode("hi", true);
  auto without = (*tokenizer)->encode("hi", false);
  ASSERT_TRUE(with && without);
  EXPECT_EQ(with->size(), without->size() + 1);
  EXPECT_EQ(with->front(), 0);
}

TEST(ReferenceTokenizer, SentencePieceModelMatchesSentencePiece) {
  auto tokenizer = load_sentencepiece(testing::text_data("tiny_sp.model"));
  ASSERT_TRUE(tokenizer) << tokenizer.error().to_string();
  const json reference = load_json(testing::text_data("reference_ids.json"));
  for (const Sample& s : samples(reference.at("tiny_sp"))) {
    SCOPED_TRACE("text: \"" + s.text + "\"");
    auto ids = (*tokenizer)->encode(s.text);
    ASSERT_TRUE(ids) << ids.error().to_string();
    EXPECT_EQ(*ids, s.ids);
    auto text = (*tokenizer)->decode(*ids, /*skip_special=*/true);
    ASSERT_TRUE(text);
    EXPECT_EQ(*text, s.text);
  }
}

TEST(ReferenceTokenizer, SentencePieceRebuiltFromGgufMetadata) {
  auto file = GgufFile::open(testing::text_data("tiny_sp_vocab.gguf"));
  ASSERT_TRUE(file) << file.error().to_string();
  auto tokenizer = load_gguf_tokenizer(**file);
  ASSERT_TRUE(tokenizer) << tokenizer.error().to_string();
  const json reference = load_json(testing::text_data("reference_ids.json"));
  for (const Sample& s : samples(reference.at("tiny_sp"))) {
    SCOPED_TRACE("text: \"" + s.text + "\"");
    auto ids = (*tokenizer)->encode(s.text);
    ASSERT_TRUE(ids) << ids.error().to_string();
    EXPECT_EQ(*ids, s.ids);
  }
}

TEST(ReferenceTokenizer, SmolLM2GgufMatchesHuggingFace) {
  const std::string path = testing::smollm2_gguf();
  if (path.empty()) {
    GTEST_SKIP() << "SmolLM2 GGUF not found: run deploy/fetch_model.sh and set "
                    "RUNAHEAD_SMOLLM2_GGUF to the path it prints";
  }
  auto file = GgufFile::open(path);
  ASSERT_TRUE(file) << file.error().to_string();
  auto tokenizer = load_gguf_tokenizer(**file);
  ASSERT_TRUE(tokenizer) << tokenizer.error().to_string();
  EXPECT_EQ((*tokenizer)->vocab_size(), 49152);
  EXPECT_EQ((*tokenizer)->eos_token(), 2);
  EXPECT_EQ((*tokenizer)->token_id("<|im_start|>"), 1);
  expect_matches_reference(**tokenizer,
                           samples(load_json(testing::text_data("smollm2_gguf_ids.json"))), true);
}

TEST(Tokenizer, InvalidUtf8IsAnErrorNotACrash) {
  auto tokenizer = load_tokenizer_json(testing::text_data("gpt2_style.tokenizer.json"));
  ASSERT_TRUE(tokenizer);
  for (std::string bad : {std::string("abc\xff"), std::string("\xc3"), std::string("\xed\xa0\x80"),
                          std::string("ok \xe2\x82 then")}) {
    auto ids = (*tokenizer)->encode(bad);
    ASSERT_FALSE(ids);
    EXPECT_EQ(ids.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(ids.error().message.find("UTF-8"), std::string::npos);
  }
  auto sp = load_sentencepiece(testing::text_data("tiny_sp.model"));
  ASSERT_TRUE(sp);
  EXPECT_FALSE((*sp)->encode("\xff"));
}

TEST(Tokenizer, DecodeRejectsIdsOutsideTheVocabulary) {
  auto tokenizer = load_tokenizer_json(testing::text_data("gpt2_style.tokenizer.json"));
  ASSERT_TRUE(tokenizer);
  const std::vector<int32_t> ids = {5, (*tokenizer)->vocab_size()};
  auto text = (*tokenizer)->decode(ids);
  ASSERT_FALSE(text);
  EXPECT_NE(text.error().message.find(std::to_string((*tokenizer)->vocab_size())),
            std::string::npos);
}

TEST(Tokenizer, SpecialTokensAreMatchedBeforeBpeAndSkippable) {
  auto tokenizer = load_tokenizer_json(testing::text_data("smollm_style.tokenizer.json"));
  ASSERT_TRUE(tokenizer);
  const auto start = (*tokenizer)->token_id("<|im_start|>");
  ASSERT_TRUE(start);
  EXPECT_TRUE((*tokenizer)->is_special(*start));
  auto ids = (*tokenizer)->encode("<|im_start|>hello");
  ASSERT_TRUE(ids);
  EXPECT_EQ(ids->front(), *start);
  auto shown = (*tokenizer)->decode(*ids, false);
  auto skipped = (*tokenizer)->decode(*ids, true);
  ASSERT_TRUE(shown && skipped);
  EXPECT_EQ(*shown, "<|im_start|>hello");
  EXPECT_EQ(*skipped, "hello");
}

TEST(Tokenizer, LoadErrorsNameTheFile) {
  auto missing = load_tokenizer_json("/nonexistent/tokenizer.json");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("/nonexistent/tokenizer.json"), std::string::npos);
  auto not_sp = load_sentencepiece(testing::text_data("reference_ids.json"));
  ASSERT_FALSE(not_sp);
  EXPECT_NE(not_sp.error().message.find("reference_ids.json"), std::string::npos);
}

TEST(Tokenizer, ParsesTokenizerJsonTextAsLoadReadsTheFile) {
  const std::string path = testing::text_data("smollm_style.tokenizer.json");
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto from_file = load_tokenizer_json(path);
  auto from_text = parse_tokenizer_json(text, "", "memory/tokenizer.json");
  ASSERT_TRUE(from_file) << from_file.error().to_string();
  ASSERT_TRUE(from_text) << from_text.error().to_string();
  const std::string sample = "<|im_start|>user\nHello, world! 123<|im_end|>";
  auto file_ids = (*from_file)->encode(sample);
  auto text_ids = (*from_text)->encode(sample);
  ASSERT_TRUE(file_ids && text_ids);
  EXPECT_EQ(*file_ids, *text_ids);

  // tokenizer_config.json's text names BOS and EOS.
  auto configured = parse_tokenizer_json(
      text, R"({"bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"}})", "memory");
  ASSERT_TRUE(configured) << configured.error().to_string();
  EXPECT_EQ((*configured)->bos_token(), (*configured)->token_id("<|im_start|>").value_or(-2));
  EXPECT_EQ((*configured)->eos_token(), (*configured)->token_id("<|im_end|>").value_or(-2));

  auto broken = parse_tokenizer_json(text.substr(0, text.size() / 2), "", "memory/half.json");
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().message.find("memory/half.json"), std::string::npos);
}

// Ids index the vocabulary: negative, fractional or huge ones (found by fuzz/
// tokenizer_json_fuzzer; the inputs are its seeds fuzz/corpus/tokenizer_json/regression_*) are
// refused naming the token, where they once wrote out of bounds or overflowed.
TEST(Tokenizer, RefusesTokenIdsOutsideTheVocabularyRange) {
  const json minimal = {
      {"added_tokens", {{{"id", 3}, {"content", "<|im_end|>"}, {"special", true}}}},
      {"pre_tokenizer", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}}, {"merges", {"a b"}}}}};
  auto good = parse_tokenizer_json(minimal.dump(), "", "minimal.json");
  ASSERT_TRUE(good) << good.error().to_string();
  EXPECT_EQ((*good)->vocab_size(), 4);
  auto ids = (*good)->encode("ab<|im_end|>", false);
  ASSERT_TRUE(ids) << ids.error().to_string();
  EXPECT_EQ(*ids, (std::vector<int32_t>{2, 3}));

  struct Case {
    const char* label;
    bool added;  // the id of the added token, else of vocabulary entry "a"
    json id;
    const char* expected;
  };
  const Case cases[] = {
      {"negative added id", true, -1, "token '<|im_end|>' has id -1, outside [0, 16777216)"},
      {"float added id", true, 1e300, "token '<|im_end|>' has id 1e+300, not an integer"},
      {"float vocabulary id", false, 2.5, "token 'a' has id 2.5, not an integer"},
      {"largest vocabulary id", false, INT64_MAX, "token 'a' has id 9223372036854775807, outside"},
      {"id past the limit", false, 1 << 24, "token 'a' has id 16777216, outside"},
  };
  for (const Case& c : cases) {
    json broken = minimal;
    if (c.added) {
      broken["added_tokens"][0]["id"] = c.id;
    } else {
      broken["model"]["vocab"]["a"] = c.id;
    }
    auto tokenizer = parse_tokenizer_json(broken.dump(), "", "broken.json");
    ASSERT_FALSE(tokenizer) << c.label;
    EXPECT_EQ(tokenizer.error().code, ErrorCode::kCorruptData) << c.label;
    EXPECT_NE(tokenizer.error().message.find(std::string("broken.json: ") + c.expected),
              std::string::npos)
        << c.label << ": " << tokenizer.error().message;
  }
}

}  // namespace
}  // namespace runahead::text
