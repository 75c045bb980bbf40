// UTF-8 validation, U+FFFD replacement and the streaming boundary.
#include <gtest/gtest.h>

#include "text/utf8.h"

namespace runahead::text {
namespace {

TEST(Utf8, AcceptsWellFormedText) {
  for (const char* ok : {"", "ascii", "Grüße", "中文", "😀👍🏽", "\xf4\x8f\xbf\xbf"}) {
    EXPECT_TRUE(validate_utf8(ok).is_ok()) << ok;
  }
}

TEST(Utf8, RejectsIllFormedTextWithItsOffset) {
  struct Case {
    std::string text;
    size_t offset;
  };
  for (const Case& c : {Case{"ab\xff", 2}, Case{"\xc0\x80", 0}, Case{"x\xed\xa0\x80", 1},
                        Case{"\xf4\x90\x80\x80", 0}, Case{"abc\xe2\x82", 3}, Case{"\x80", 0}}) {
    Status status = validate_utf8(c.text);
    ASSERT_FALSE(status);
    EXPECT_NE(status.message().find("offset " + std::to_string(c.offset)), std::string::npos)
        << status.message();
  }
}

TEST(Utf8, SanitizeReplacesEachBadSequenceOnce) {
  EXPECT_EQ(sanitize_utf8("ok"), "ok");
  EXPECT_EQ(sanitize_utf8("a\xff"
                          "b"),
            "a\xef\xbf\xbd"
            "b");
  // A truncated three-byte character is one replacement (maximal subpart), as Python does.
  EXPECT_EQ(sanitize_utf8("a\xe2\x82"
                          "b"),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(sanitize_utf8("\xe2\x82"), "\xef\xbf\xbd");
  EXPECT_EQ(sanitize_utf8("\xc0\x80"), "\xef\xbf\xbd\xef\xbf\xbd");
}

TEST(Utf8, CompletePrefixHoldsBackAnUnfinishedCharacter) {
  const std::string emoji = "\xf0\x9f\x98\x80";
  EXPECT_EQ(complete_utf8_prefix("ab"), 2u);
  EXPECT_EQ(complete_utf8_prefix("ab" + emoji.substr(0, 1)), 2u);
  EXPECT_EQ(complete_utf8_prefix("ab" + emoji.substr(0, 3)), 2u);
  EXPECT_EQ(complete_utf8_prefix("ab" + emoji), 6u);
  // Bytes that can never become a character are not held back.
  EXPECT_EQ(complete_utf8_prefix("ab\xff"), 3u);
}

}  // namespace
}  // namespace runahead::text
