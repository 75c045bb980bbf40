#include "model/file_digest.h"

#include <openssl/evp.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/log.h"
#include "core/mapped_file.h"

namespace runahead {
namespace {

namespace fs = std::filesystem;
using Digest = std::array<uint8_t, 32>;

constexpr const char* kRecordFormat = "runahead-file-digest-1";
constexpr const char* kTreeTag = "runahead-tree-sha256-v1";

Digest sha256(std::span<const uint8_t> bytes) {
  Digest out{};
  unsigned int size = 0;
  // EVP_Digest fails only when out of memory or without a SHA-256 provider; an all-zero digest
  // then never matches a real one.
  if (EVP_Digest(bytes.data(), bytes.size(), out.data(), &size, EVP_sha256(), nullptr) != 1) {
    out.fill(0);
  }
  return out;
}

std::string hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

void append_u64(std::vector<uint8_t>& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

// What a cache record is keyed by, as stat() reports it.
struct FileIdentity {
  std::string path;  // absolute, symbolic links resolved
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint64_t inode = 0;
  uint64_t device = 0;

  bool operator==(const FileIdentity&) const = default;
};

Result<FileIdentity> identify(const std::string& path) {
  std::error_code error;
  const fs::path absolute = fs::canonical(path, error);
  if (error) return make_error(ErrorCode::kNotFound, path + ": " + error.message());
  struct stat info {};
  if (::stat(absolute.c_str(), &info) != 0) {
    return make_error(ErrorCode::kNotFound, path + ": cannot stat");
  }
  if (!S_ISREG(info.st_mode)) {
    return make_error(ErrorCode::kInvalidArgument, path + ": not a regular file");
  }
  auto ns = [](const timespec& t) { return int64_t{t.tv_sec} * 1000000000 + t.tv_nsec; };
  return FileIdentity{.path = absolute.string(),
                      .size = static_cast<uint64_t>(info.st_size),
                      .mtime_ns = ns(info.st_mtim),
                      .ctime_ns = ns(info.st_ctim),
                      .inode = static_cast<uint64_t>(info.st_ino),
                      .device = static_cast<uint64_t>(info.st_dev)};
}

fs::path record_beside(const FileIdentity& file) {
  const fs::path path(file.path);
  return path.parent_path() / ("." + path.filename().string() + ".runahead-digest.json");
}

fs::path fallback_dir(const FileDigestOptions& options) {
  if (!options.fallback_cache_dir.empty()) return options.fallback_cache_dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return fs::path(xdg) / "runahead";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return fs::path(home) / ".cache" / "runahead";
  }
  return {};
}

fs::path record_elsewhere(const FileIdentity& file, const FileDigestOptions& options) {
  const fs::path dir = fallback_dir(options);
  if (dir.empty()) return {};
  return dir / (sha256_hex(file.path) + ".json");
}

nlohmann::json record_of(const FileIdentity& file, const std::string& digest) {
  return {{"format", kRecordFormat},   {"path", file.path},
          {"size", file.size},         {"mtime_ns", file.mtime_ns},
          {"ctime_ns", file.ctime_ns}, {"inode", file.inode},
          {"device", file.device},     {"chunk_bytes", kDigestChunkBytes},
          {"sha256_tree", digest}};
}

// The digest a record holds for exactly this file, if it does.
std::optional<std::string> read_record(const fs::path& record, const FileIdentity& file) {
  if (record.empty()) return std::nullopt;
  std::ifstream in(record, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, false);
  if (!json.is_object()) return std::nullopt;
  nlohmann::json want = record_of(file, "");
  want.erase("sha256_tree");
  for (const auto& [key, value] : want.items()) {
    if (!json.contains(key) || json[key] != value) return std::nullopt;
  }
  const auto digest = json.find("sha256_tree");
  if (digest == json.end() || !digest->is_string() || digest->get<std::string>().size() != 64) {
    return std::nullopt;
  }
  return digest->get<std::string>();
}

// Written to a temporary name and renamed, so a reader sees a whole record or none.
bool write_record(const fs::path& record, const FileIdentity& file, const std::string& digest) {
  if (record.empty()) return false;
  std::error_code error;
  fs::create_directories(record.parent_path(), error);
  if (::access(record.parent_path().c_str(), W_OK) != 0) return false;
  const fs::path temporary = record.string() + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) return false;
    out << record_of(file, digest).dump(2) << "\n";
    if (!out) return false;
  }
  fs::rename(temporary, record, error);
  if (error) {
    fs::remove(temporary, error);
    return false;
  }
  return true;
}

}  // namespace

std::string sha256_hex(std::span<const uint8_t> bytes) {
  return hex(sha256(bytes));
}

std::string sha256_hex(const std::string& text) {
  return sha256_hex(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

std::string tree_sha256_hex(std::span<const uint8_t> bytes, unsigned threads) {
  const size_t chunks = (bytes.size() + kDigestChunkBytes - 1) / kDigestChunkBytes;
  std::vector<Digest> leaves(chunks);
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < chunks; i = next++) {
      const size_t begin = i * kDigestChunkBytes;
      leaves[i] =
          sha256(bytes.subspan(begin, std::min<size_t>(kDigestChunkBytes, bytes.size() - begin)));
    }
  };
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  const size_t helpers = std::min<size_t>(threads, std::max<size_t>(chunks, 1)) - 1;
  std::vector<std::thread> pool;
  for (size_t i = 0; i < helpers; ++i) pool.emplace_back(work);
  work();
  for (auto& thread : pool) thread.join();

  std::vector<uint8_t> root(kTreeTag, kTreeTag + std::char_traits<char>::length(kTreeTag));
  append_u64(root, bytes.size());
  append_u64(root, kDigestChunkBytes);
  for (const Digest& leaf : leaves) root.insert(root.end(), leaf.begin(), leaf.end());
  return sha256_hex(root);
}

namespace {

int64_t wall_clock_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return int64_t{now.tv_sec} * 1000000000 + now.tv_nsec;
}

}  // namespace

Result<FileDigest> file_tree_sha256(const std::string& path, const FileDigestOptions& options) {
  const int64_t started_ns = wall_clock_ns();
  RUNAHEAD_ASSIGN_OR_RETURN(const FileIdentity before, identify(path));
  const bool cached = options.use_cache && before.size >= options.min_cached_bytes;
  const fs::path beside = record_beside(before);
  const fs::path elsewhere = record_elsewhere(before, options);
  if (cached) {
    for (const fs::path& record : {beside, elsewhere}) {
      if (auto digest = read_record(record, before)) {
        return FileDigest{.hex = *digest, .size = before.size, .from_cache = true};
      }
    }
  }
  RUNAHEAD_ASSIGN_OR_RETURN(auto mapped, MappedFile::open(before.path));
  FileDigest out{.hex = tree_sha256_hex(mapped->bytes(), options.threads),
                 .size = mapped->size(),
                 .from_cache = false};
  if (cached) {
    // Only a file that did not change while it was read, nor just before, gets a record.
    const int64_t settled_ns = started_ns - options.racy_window_ms * 1000000;
    auto after = identify(path);
    if (after && *after == before && out.size == before.size && before.mtime_ns < settled_ns &&
        before.ctime_ns < settled_ns && !write_record(beside, before, out.hex) &&
        !write_record(elsewhere, before, out.hex)) {
      logger("model")->warn("{}: cannot write a digest record beside it or under {}", path,
                            elsewhere.parent_path().string());
    }
  }
  return out;
}

}  // namespace runahead
