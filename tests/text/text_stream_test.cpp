// Streaming decode: characters split across byte-level tokens appear once complete, and the
// streamed text equals the whole decode.
#include <gtest/gtest.h>

#include "tests/text/test_paths.h"
#include "text/text_stream.h"
#include "text/tokenizer.h"

namespace runahead::text {
namespace {

TEST(TextStream, EmitsWholeCharactersOnly) {
  auto tokenizer = load_tokenizer_json(testing::text_data("gpt2_style.tokenizer.json"));
  ASSERT_TRUE(tokenizer);
  const std::string text = "Emoji 😀 and 中文 and Grüße";
  auto ids = (*tokenizer)->encode(text, false);
  ASSERT_TRUE(ids);
  TextStream stream(**tokenizer);
  std::string streamed;
  bool held_back = false;
  for (int32_t id : *ids) {
    auto piece = stream.push(id);
    ASSERT_TRUE(piece);
    // Every emitted piece is valid UTF-8 on its own.
    auto single = (*tokenizer)->decode_bytes(std::span<const int32_t>(&id, 1));
    if (piece->size() < single->size()) held_back = true;
    EXPECT_EQ(piece->find("\xef\xbf\xbd"), std::string::npos);
    streamed += *piece;
  }
  auto rest = stream.finish();
  ASSERT_TRUE(rest);
  streamed += *rest;
  EXPECT_EQ(streamed, text);
  EXPECT_TRUE(held_back) << "the test text should split a character across tokens";
}

TEST(TextStream, SentencePieceStreamsLikeItsWholeDecode) {
  auto tokenizer = load_sentencepiece(testing::text_data("tiny_sp.model"));
  ASSERT_TRUE(tokenizer);
  const std::string text = "Hello world, 😀 中文 ok";
  auto ids = (*tokenizer)->encode(text, true);
  ASSERT_TRUE(ids);
  TextStream stream(**tokenizer);
  std::string streamed;
  for (int32_t id : *ids) {
    auto piece = stream.push(id);
    ASSERT_TRUE(piece);
    streamed += *piece;
  }
  streamed += *stream.finish();
  EXPECT_EQ(streamed, text);
}

}  // namespace
}  // namespace runahead::text
