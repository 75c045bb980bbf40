// SHA-256 over a whole file as a two-level tree, computed in parallel and remembered in a small
// cache record so that a worker restarting on the same checkpoint does not read it again.
//
// The file is cut into kDigestChunkBytes chunks; each chunk's SHA-256 is a leaf, and the digest
// is SHA-256("runahead-tree-sha256-v1", size, chunk size, leaf 0, leaf 1, ...), sizes as 64-bit
// little-endian. Leaves are independent, so every core hashes its own chunks of the mapped file.
//
// The cache record of a file is a hint, keyed by the file's absolute path, size, modification
// and status-change times (ns), inode and device: when any differs, the file is hashed again and
// the record rewritten. A file modified within FileDigestOptions::racy_window_ms of being hashed
// gets no record (its times might not move on a further change). It lives beside the file
// (".NAME.runahead-digest.json") where that folder is writable, else under $XDG_CACHE_HOME/runahead
// (or ~/.cache/runahead).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "core/status.h"

namespace runahead {

constexpr uint64_t kDigestChunkBytes = uint64_t{8} << 20;

struct FileDigestOptions {
  bool use_cache = true;
  // Smaller files are hashed every time (faster than reading and checking a record).
  uint64_t min_cached_bytes = uint64_t{64} << 20;
  // Where records go when the file's folder is not writable; empty: $XDG_CACHE_HOME/runahead,
  // else ~/.cache/runahead.
  std::string fallback_cache_dir;
  unsigned threads = 0;  // 0: one per core
  // A file changed this recently gets no record: a later change within the file system's clock
  // tick would leave its times as they are, and the record would then describe old bytes.
  int64_t racy_window_ms = 2000;
};

struct FileDigest {
  std::string hex;  // 64 lowercase hex digits
  uint64_t size = 0;
  bool from_cache = false;
};

[[nodiscard]] Result<FileDigest> file_tree_sha256(const std::string& path,
                                                  const FileDigestOptions& options = {});

// The tree digest of bytes in memory (a file's digest is this of its contents).
std::string tree_sha256_hex(std::span<const uint8_t> bytes, unsigned threads = 0);
// Plain SHA-256 of `bytes`, as 64 lowercase hex digits.
std::string sha256_hex(std::span<const uint8_t> bytes);
std::string sha256_hex(const std::string& text);

}  // namespace runahead
