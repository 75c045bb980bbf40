// The pre-tokenizer splits, checked piece by piece on inputs where the families differ.
#include <gtest/gtest.h>

#include "text/pretokenizer.h"

namespace runahead::text {
namespace {

std::vector<std::string> split(const std::string& family, const std::string& text) {
  auto pre = PreTokenizer::for_gguf_pre(family);
  EXPECT_TRUE(pre) << pre.error().to_string();
  auto pieces = pre->split(text);
  EXPECT_TRUE(pieces);
  return {pieces->begin(), pieces->end()};
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizer, Gpt2) {
  EXPECT_EQ(split("gpt2", "Hello world's 12345!!  ok"),
            (Pieces{"Hello", " world", "'s", " 12345", "!!", " ", " ok"}));
  // A whitespace run keeps its last space for the next word; trailing whitespace stays whole.
  EXPECT_EQ(split("gpt2", "a   b  \n"), (Pieces{"a", "  ", " b", "  \n"}));
  EXPECT_EQ(split("gpt2", "Grüße 中文"), (Pieces{"Grüße", " 中文"}));
}

TEST(PreTokenizer, SmolLMSplitsDigitsOneByOne) {
  EXPECT_EQ(split("smollm", "x 2024!"), (Pieces{"x", " ", "2", "0", "2", "4", "!"}));
}

TEST(PreTokenizer, Llama3GroupsDigitsInThreesAndFoldsCase) {
  EXPECT_EQ(split("llama-bpe", "1234567 WE'LL"), (Pieces{"123", "456", "7", " WE", "'LL"}));
  EXPECT_EQ(split("llama-bpe", "a\n\nb"), (Pieces{"a", "\n\n", "b"}));
}

TEST(PreTokenizer, PiecesAlwaysConcatenateToTheInput) {
  const std::string text = "  mixed\t\tcontent 😀👍🏽 3.14 中文,\r\n end  ";
  for (const char* family : {"gpt2", "smollm", "llama-bpe", "qwen2"}) {
    std::string joined;
    for (const std::string& piece : split(family, text)) joined += piece;
    EXPECT_EQ(joined, text) << family;
  }
}

TEST(PreTokenizer, UnknownFamilyIsNamed) {
  auto pre = PreTokenizer::for_gguf_pre("mystery-pre");
  ASSERT_FALSE(pre);
  EXPECT_NE(pre.error().message.find("mystery-pre"), std::string::npos);
}

TEST(PreTokenizer, BadPatternIsNamed) {
  PreTokenizer pre;
  Status status = pre.add_split("(unclosed");
  ASSERT_FALSE(status);
  EXPECT_NE(status.message().find("(unclosed"), std::string::npos);
}

}  // namespace
}  // namespace runahead::text
