// The tree digest of a file (model/file_digest.h): its definition, its independence of the
// thread count, and its cache records, which are trusted only while the file is unchanged.
#include "model/file_digest.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"

namespace runahead {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::vector<uint8_t> random_bytes(size_t size, uint32_t seed) {
  std::mt19937 generator(seed);
  std::vector<uint8_t> out(size);
  for (auto& b : out) b = static_cast<uint8_t>(generator());
  return out;
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

// Overwrites one byte in place: the size stays, the times change (after a pause longer than the
// file system's clock tick).
void poke(const std::string& path, size_t offset, uint8_t value) {
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
  file.seekp(static_cast<std::streamoff>(offset));
  file.put(static_cast<char>(value));
}

std::string hex(const uint8_t* digest) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 32; ++i) {
    out.push_back(kDigits[digest[i] >> 4]);
    out.push_back(kDigits[digest[i] & 15]);
  }
  return out;
}

// Every record, wherever the options put them.
FileDigestOptions cached_always(const TempDir& fallback) {
  FileDigestOptions options;
  options.min_cached_bytes = 0;
  options.fallback_cache_dir = fallback.path();
  options.racy_window_ms = 0;  // the files below are fresh
  return options;
}

std::string record_beside(const std::string& path) {
  const fs::path p(path);
  return (p.parent_path() / ("." + p.filename().string() + ".runahead-digest.json")).string();
}

TEST(FileDigestTest, IsTheDocumentedTreeOfChunkDigests) {
  // Two whole chunks and a part: three leaves.
  const auto bytes = random_bytes(2 * kDigestChunkBytes + 12345, 1);
  std::vector<uint8_t> root;
  const std::string tag = "runahead-tree-sha256-v1";
  root.insert(root.end(), tag.begin(), tag.end());
  for (uint64_t value : {static_cast<uint64_t>(bytes.size()), kDigestChunkBytes}) {
    for (int i = 0; i < 8; ++i) root.push_back(static_cast<uint8_t>(value >> (8 * i)));
  }
  for (size_t begin = 0; begin < bytes.size(); begin += kDigestChunkBytes) {
    uint8_t leaf[32];
    SHA256(bytes.data() + begin, std::min<size_t>(kDigestChunkBytes, bytes.size() - begin), leaf);
    root.insert(root.end(), leaf, leaf + 32);
  }
  uint8_t want[32];
  SHA256(root.data(), root.size(), want);
  EXPECT_EQ(tree_sha256_hex(bytes, 1), hex(want));
  EXPECT_EQ(tree_sha256_hex(bytes, 3), hex(want));
  EXPECT_EQ(tree_sha256_hex(bytes, 0), hex(want));

  TempDir dir;
  write_file(dir.file("blob"), bytes);
  FileDigestOptions uncached;
  uncached.use_cache = false;
  auto digest = file_tree_sha256(dir.file("blob"), uncached);
  ASSERT_TRUE(digest) << digest.error().to_string();
  EXPECT_EQ(digest->hex, hex(want));
  EXPECT_EQ(digest->size, bytes.size());
  EXPECT_FALSE(digest->from_cache);
}

TEST(FileDigestTest, AnyByteChangesIt) {
  auto bytes = random_bytes(kDigestChunkBytes + 100, 2);
  const std::string reference = tree_sha256_hex(bytes);
  for (size_t offset : {size_t{0}, size_t{4096 + 17}, kDigestChunkBytes - 1, bytes.size() - 1}) {
    auto changed = bytes;
    changed[offset] ^= 1;
    EXPECT_NE(tree_sha256_hex(changed), reference) << offset;
  }
  // An empty file has a digest too, unlike any other.
  EXPECT_NE(tree_sha256_hex({}), tree_sha256_hex(std::vector<uint8_t>{0}));
}

TEST(FileDigestTest, CacheRecordIsWrittenBesideTheFileAndHit) {
  TempDir dir;
  TempDir fallback;
  const std::string path = dir.file("weights.bin");
  write_file(path, random_bytes(100000, 3));
  const FileDigestOptions options = cached_always(fallback);
  auto first = file_tree_sha256(path, options);
  ASSERT_TRUE(first) << first.error().to_string();
  EXPECT_FALSE(first->from_cache);
  EXPECT_TRUE(fs::exists(record_beside(path)));
  auto second = file_tree_sha256(path, options);
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->from_cache);
  EXPECT_EQ(second->hex, first->hex);
}

TEST(FileDigestTest, ACacheRecordIsIgnoredOnceTheFileChanged) {
  TempDir dir;
  TempDir fallback;
  const std::string path = dir.file("weights.bin");
  write_file(path, random_bytes(100000, 4));
  const FileDigestOptions options = cached_always(fallback);
  auto original = file_tree_sha256(path, options);
  ASSERT_TRUE(original);

  // Same size, one byte and the modification time changed.
  poke(path, 5000, 0x5a);
  auto edited = file_tree_sha256(path, options);
  ASSERT_TRUE(edited);
  EXPECT_FALSE(edited->from_cache);
  EXPECT_NE(edited->hex, original->hex);

  // A byte changed and the modification time put back as it was: the status-change time,
  // which no one can set, still tells.
  struct stat before {};
  ASSERT_EQ(::stat(path.c_str(), &before), 0);
  ASSERT_TRUE(file_tree_sha256(path, options)->from_cache);
  poke(path, 6000, 0xa5);
  const timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  auto sneaky = file_tree_sha256(path, options);
  ASSERT_TRUE(sneaky);
  EXPECT_FALSE(sneaky->from_cache);
  EXPECT_NE(sneaky->hex, edited->hex);

  // Another size.
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  std::ofstream(path, std::ios::binary | std::ios::app) << "x";
  auto longer = file_tree_sha256(path, options);
  ASSERT_TRUE(longer);
  EXPECT_FALSE(longer->from_cache);
  EXPECT_EQ(longer->size, 100001u);
}

TEST(FileDigestTest, ARecordForAnotherFileOrMalformedIsNotTrusted) {
  TempDir dir;
  TempDir fallback;
  const FileDigestOptions options = cached_always(fallback);
  write_file(dir.file("a"), random_bytes(1000, 5));
  write_file(dir.file("b"), random_bytes(1000, 6));
  ASSERT_TRUE(file_tree_sha256(dir.file("a"), options));
  // a's record copied to b's place names another path and inode: b is hashed.
  fs::copy_file(record_beside(dir.file("a")), record_beside(dir.file("b")));
  auto b = file_tree_sha256(dir.file("b"), options);
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->from_cache);
  EXPECT_EQ(b->hex, tree_sha256_hex(random_bytes(1000, 6)));
  // A record that is not JSON is hashed over.
  std::ofstream(record_beside(dir.file("a")), std::ios::trunc) << "{not json";
  auto a = file_tree_sha256(dir.file("a"), options);
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->from_cache);
  EXPECT_EQ(a->hex, tree_sha256_hex(random_bytes(1000, 5)));
}

TEST(FileDigestTest, AFileChangedJustNowGetsNoRecord) {
  TempDir dir;
  TempDir fallback;
  write_file(dir.file("weights.bin"), random_bytes(1000, 9));
  FileDigestOptions options = cached_always(fallback);
  options.racy_window_ms = 60000;
  ASSERT_TRUE(file_tree_sha256(dir.file("weights.bin"), options));
  EXPECT_FALSE(fs::exists(record_beside(dir.file("weights.bin"))));
  EXPECT_FALSE(file_tree_sha256(dir.file("weights.bin"), options)->from_cache);
}

TEST(FileDigestTest, SmallFilesAreNotCachedByDefault) {
  TempDir dir;
  write_file(dir.file("config.json"), random_bytes(100, 7));
  ASSERT_TRUE(file_tree_sha256(dir.file("config.json")));
  EXPECT_FALSE(fs::exists(record_beside(dir.file("config.json"))));
}

TEST(FileDigestTest, AnUnwritableFolderPutsTheRecordInTheCacheFolder) {
  if (::geteuid() == 0) GTEST_SKIP() << "root writes into any folder";
  TempDir dir;
  TempDir fallback;
  write_file(dir.file("weights.bin"), random_bytes(1000, 8));
  ASSERT_EQ(::chmod(dir.path().c_str(), 0555), 0);
  auto first = file_tree_sha256(dir.file("weights.bin"), cached_always(fallback));
  auto second = file_tree_sha256(dir.file("weights.bin"), cached_always(fallback));
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  ASSERT_TRUE(first && second);
  EXPECT_FALSE(fs::exists(record_beside(dir.file("weights.bin"))));
  EXPECT_FALSE(fs::is_empty(fallback.path()));
  EXPECT_TRUE(second->from_cache);
}

TEST(FileDigestTest, AMissingFileIsNamed) {
  auto missing = file_tree_sha256("/nonexistent/weights.bin");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("/nonexistent/weights.bin"), std::string::npos);
}

}  // namespace
}  // namespace runahead
