// Key files: the format (one line of hexadecimal digits, 32 to 1024 bytes), the permissions
// (nobody but the owner may read or change one), errors that name the file but never the key,
// and `runahead keygen`'s writer (mode 0600, never overwriting).
#include "net/control/control_key.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "net/control/control_auth.h"
#include "tests/support/temp_dir.h"

namespace runahead::net {
namespace {

const std::string kKeyHex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";

void write_file(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

TEST(ControlKey, ParsesHexWithSurroundingWhiteSpace) {
  auto key = ControlKey::parse("  " + kKeyHex + "\r\n", "k");
  ASSERT_TRUE(key.is_ok()) << key.error().to_string();
  ASSERT_EQ(key->bytes().size(), 32u);
  EXPECT_EQ(key->bytes()[0], 0x00);
  EXPECT_EQ(key->bytes()[15], 0xff);
  EXPECT_EQ(key->bytes()[31], 0xff);
  EXPECT_EQ(key->source(), "k");
}

TEST(ControlKey, RefusesShortOddOrNonHexKeysNamingTheFileNotTheKey) {
  struct Case {
    std::string text;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {kKeyHex.substr(0, 62), "31 bytes of key"},
      {"", "0 bytes of key"},
      {kKeyHex + "0", "odd number"},
      {kKeyHex.substr(0, 10) + "zz" + kKeyHex.substr(12), "character 11"},
      {kKeyHex + " " + kKeyHex + "0", "character 65 is not a hexadecimal digit"},
      {std::string(2 * ControlKey::kMaxBytes + 2, 'a'), "1025 bytes of key"},
  };
  for (const Case& bad : cases) {
    auto key = ControlKey::parse(bad.text, "/etc/runahead/cluster.key");
    ASSERT_FALSE(key.is_ok()) << bad.needle;
    EXPECT_EQ(key.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(key.error().message.find("/etc/runahead/cluster.key"), std::string::npos)
        << key.error().message;
    EXPECT_NE(key.error().message.find(bad.needle), std::string::npos) << key.error().message;
    EXPECT_EQ(key.error().message.find(kKeyHex.substr(0, 16)), std::string::npos)
        << "the error shows key material: " << key.error().message;
  }
}

TEST(ControlKey, LoadsAPrivateFileAndRefusesOneOthersMayRead) {
  testing::TempDir dir;
  const std::string path = dir.file("cluster.key");
  write_file(path, kKeyHex + "\n", 0600);
  auto key = ControlKey::load(path);
  ASSERT_TRUE(key.is_ok()) << key.error().to_string();
  EXPECT_EQ(key->bytes().size(), 32u);
  EXPECT_EQ(key->source(), path);
  ASSERT_EQ(::chmod(path.c_str(), 0400), 0);
  EXPECT_TRUE(ControlKey::load(path).is_ok());

  for (mode_t mode : {0644, 0640, 0604, 0620, 0602}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto refused = ControlKey::load(path);
    ASSERT_FALSE(refused.is_ok()) << std::oct << mode;
    EXPECT_NE(refused.error().message.find(path), std::string::npos) << refused.error().message;
    EXPECT_NE(refused.error().message.find("chmod 600"), std::string::npos)
        << refused.error().message;
  }

  auto missing = ControlKey::load(dir.file("none.key"));
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find(dir.file("none.key")), std::string::npos);

  auto directory = ControlKey::load(dir.path());
  ASSERT_FALSE(directory.is_ok());
  EXPECT_NE(directory.error().message.find("not a regular file"), std::string::npos)
      << directory.error().message;
}

TEST(ControlKey, WriteKeyFileMakesAFreshPrivateKeyAndNeverOverwrites) {
  testing::TempDir dir;
  const std::string first = dir.file("a.key");
  const std::string second = dir.file("b.key");
  const mode_t old_umask = ::umask(0);  // a permissive umask must not widen the mode
  ASSERT_TRUE(write_key_file(first).is_ok());
  ::umask(old_umask);
  ASSERT_TRUE(write_key_file(second).is_ok());
  struct stat info {};
  ASSERT_EQ(::stat(first.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0600u);
  auto a = ControlKey::load(first);
  auto b = ControlKey::load(second);
  ASSERT_TRUE(a.is_ok()) << a.error().to_string();
  ASSERT_TRUE(b.is_ok()) << b.error().to_string();
  EXPECT_EQ(a->bytes().size(), ControlKey::kGeneratedBytes);
  EXPECT_FALSE(a->same_secret(*b));
  EXPECT_TRUE(a->same_secret(*ControlKey::load(first)));

  Status again = write_key_file(first);
  ASSERT_FALSE(again.is_ok());
  EXPECT_NE(again.message().find(first), std::string::npos) << again.message();
  EXPECT_NE(again.message().find("never overwritten"), std::string::npos) << again.message();
  EXPECT_TRUE(a->same_secret(*ControlKey::load(first)));  // untouched
}

TEST(ControlAuth, RefusesOneKeyForBothRoles) {
  testing::TempDir dir;
  write_file(dir.file("cluster.key"), kKeyHex, 0600);
  write_file(dir.file("client.key"), kKeyHex, 0600);
  auto auth = ControlAuth::load(dir.file("cluster.key"), dir.file("client.key"), false);
  ASSERT_FALSE(auth.is_ok());
  EXPECT_NE(auth.error().message.find("are the same"), std::string::npos) << auth.error().message;
}

TEST(ControlAuth, ListensBeyondLoopbackOnlyWithBothKeysOrInsecure) {
  testing::TempDir dir;
  ASSERT_TRUE(write_key_file(dir.file("cluster.key")).is_ok());
  ASSERT_TRUE(write_key_file(dir.file("client.key")).is_ok());
  auto none = ControlAuth::load("", "", false);
  ASSERT_TRUE(none.is_ok());
  EXPECT_TRUE(none->check_listen("127.0.0.1:7070", true).is_ok());
  Status refused = none->check_listen("0.0.0.0:7070", false);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.message().find("0.0.0.0:7070"), std::string::npos) << refused.message();
  EXPECT_NE(refused.message().find("--insecure"), std::string::npos) << refused.message();
  EXPECT_NE(refused.message().find("--cluster-key-file and --client-key-file"), std::string::npos)
      << refused.message();

  auto cluster_only = ControlAuth::load(dir.file("cluster.key"), "", false);
  ASSERT_TRUE(cluster_only.is_ok());
  refused = cluster_only->check_listen("10.0.0.1:7070", false);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.message().find("give --client-key-file"), std::string::npos)
      << refused.message();

  auto both = ControlAuth::load(dir.file("cluster.key"), dir.file("client.key"), false);
  ASSERT_TRUE(both.is_ok()) << both.error().to_string();
  EXPECT_TRUE(both->check_listen("0.0.0.0:7070", false).is_ok());
  EXPECT_TRUE(ControlAuth::load("", "", true)->check_listen("0.0.0.0:7070", false).is_ok());
}

}  // namespace
}  // namespace runahead::net
