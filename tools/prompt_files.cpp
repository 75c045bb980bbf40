#include "tools/prompt_files.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <istream>

namespace runahead::cli {
namespace {

std::string display_name(const std::string& path) {
  return path == "-" ? "standard input" : path;
}

Result<std::string> read_bounded(std::istream& in, const std::string& path) {
  std::string text;
  char buffer[1 << 16];
  while (in) {
    in.read(buffer, sizeof buffer);
    const auto got = static_cast<size_t>(in.gcount());
    if (text.size() + got > kMaxPromptFileBytes) {
      return make_error(ErrorCode::kResourceExhausted,
                        display_name(path) + ": longer than " +
                            std::to_string(kMaxPromptFileBytes >> 20) + " MiB");
    }
    text.append(buffer, got);
  }
  if (in.bad()) {
    return make_error(ErrorCode::kUnavailable,
                      display_name(path) + ": read failed: " + std::strerror(errno));
  }
  return text;
}

}  // namespace

Result<std::string> read_prompt_text(const std::string& path) {
  if (path == "-") return read_bounded(std::cin, path);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(ErrorCode::kNotFound, path + ": cannot open: " + std::strerror(errno));
  }
  return read_bounded(in, path);
}

Result<std::vector<int32_t>> read_token_ids(const std::string& path) {
  RUNAHEAD_ASSIGN_OR_RETURN(const std::string text, read_prompt_text(path));
  std::vector<int32_t> ids;
  size_t at = 0;
  auto is_separator = [](char c) {
    return c == ',' || std::isspace(static_cast<unsigned char>(c)) != 0;
  };
  while (at < text.size()) {
    while (at < text.size() && is_separator(text[at])) ++at;
    if (at == text.size()) break;
    size_t end = at;
    while (end < text.size() && !is_separator(text[end])) ++end;
    const std::string entry = text.substr(at, end - at);
    int64_t value = 0;
    bool valid = entry.size() <= 10;
    for (char c : entry) {
      if (c < '0' || c > '9') valid = false;
      if (valid) value = value * 10 + (c - '0');
    }
    if (!valid || value > INT32_MAX) {
      return make_error(ErrorCode::kInvalidArgument,
                        display_name(path) + ": token " + std::to_string(ids.size() + 1) + " (\"" +
                            entry.substr(0, 32) + "\") is not a token id in [0, 2^31)");
    }
    ids.push_back(static_cast<int32_t>(value));
    at = end;
  }
  if (ids.empty()) {
    return make_error(ErrorCode::kInvalidArgument, display_name(path) + ": no token ids");
  }
  return ids;
}

}  // namespace runahead::cli
