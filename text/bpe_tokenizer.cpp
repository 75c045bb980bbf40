#include "text/bpe_tokenizer.h"

#include <algorithm>
#include <array>
#include <limits>
#include <unordered_map>

#include "text/utf8.h"

namespace runahead::text {
namespace {

std::string encode_code_point(uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
  return out;
}

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

class BpeTokenizer final : public Tokenizer {
 public:
  BpeTokenizer(BpeVocabulary vocabulary, PreTokenizer pre)
      : v_(std::move(vocabulary)), pre_(std::move(pre)) {}

  Status build(const std::string& source) {
    const auto n = static_cast<int32_t>(v_.tokens.size());
    if (n == 0) return make_error(ErrorCode::kCorruptData, source + ": the vocabulary is empty");
    v_.special.resize(v_.tokens.size(), false);
    v_.added.resize(v_.tokens.size(), false);
    ids_.reserve(v_.tokens.size());
    for (int32_t id = 0; id < n; ++id) {
      // The first id of a duplicated text wins, as in llama.cpp.
      ids_.emplace(v_.tokens[static_cast<size_t>(id)], id);
      if (v_.added[static_cast<size_t>(id)] && !v_.tokens[static_cast<size_t>(id)].empty()) {
        added_.push_back(id);
      }
    }
    // Longest added token first, so that matching at a position takes the longest.
    std::sort(added_.begin(), added_.end(), [&](int32_t a, int32_t b) {
      return v_.tokens[static_cast<size_t>(a)].size() > v_.tokens[static_cast<size_t>(b)].size();
    });
    const auto& table = byte_to_char_table();
    for (int b = 0; b < 256; ++b) {
      auto it = ids_.find(table[static_cast<size_t>(b)]);
      byte_token_[static_cast<size_t>(b)] = it == ids_.end() ? -1 : it->second;
      char_to_byte_.emplace(table[static_cast<size_t>(b)], static_cast<uint8_t>(b));
    }
    merges_.reserve(v_.merges.size());
    for (size_t rank = 0; rank < v_.merges.size(); ++rank) {
      const auto& [left, right] = v_.merges[rank];
      auto l = ids_.find(left);
      auto r = ids_.find(right);
      auto m = ids_.find(left + right);
      if (l == ids_.end() || r == ids_.end() || m == ids_.end()) {
        return make_error(ErrorCode::kCorruptData,
                          source + ": merge #" + std::to_string(rank) + " '" + left + " " + right +
                              "' refers to a token that is not in the vocabulary");
      }
      // An earlier merge of the same pair keeps its priority.
      merges_.emplace(pair_key(l->second, r->second),
                      std::make_pair(static_cast<int32_t>(rank), m->second));
    }
    if (v_.bos >= n || v_.eos >= n) {
      return make_error(ErrorCode::kCorruptData,
                        source + ": BOS/EOS id outside the vocabulary of " + std::to_string(n));
    }
    return Status::ok();
  }

  Result<std::vector<int32_t>> encode(std::string_view text, bool add_special) const override {
    RUNAHEAD_RETURN_IF_ERROR(validate_utf8(text));
    std::vector<int32_t> out;
    if (add_special && v_.add_bos && v_.bos >= 0) out.push_back(v_.bos);
    size_t start = 0;
    size_t i = 0;
    while (i < text.size()) {
      const int32_t match = match_added(text, i);
      if (match < 0) {
        ++i;
        continue;
      }
      RUNAHEAD_RETURN_IF_ERROR(encode_ordinary(text.substr(start, i - start), start == 0, out));
      out.push_back(match);
      i += v_.tokens[static_cast<size_t>(match)].size();
      start = i;
    }
    RUNAHEAD_RETURN_IF_ERROR(encode_ordinary(text.substr(start), start == 0, out));
    if (add_special && v_.add_eos && v_.eos >= 0) out.push_back(v_.eos);
    return out;
  }

  Result<std::string> decode_bytes(std::span<const int32_t> ids, bool skip_special) const override {
    std::string out;
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab_size()) {
        return make_error(ErrorCode::kOutOfRange, "token id " + std::to_string(id) +
                                                      " is outside the vocabulary of " +
                                                      std::to_string(vocab_size()));
      }
      const auto index = static_cast<size_t>(id);
      if (v_.special[index] && skip_special) continue;
      const std::string& token = v_.tokens[index];
      if (v_.added[index]) {
        out += token;
        continue;
      }
      // Back from printable characters to bytes; a character outside the map stays as is.
      size_t k = 0;
      while (k < token.size()) {
        size_t length = 1;
        const auto lead = static_cast<unsigned char>(token[k]);
        if (lead >= 0xf0) {
          length = 4;
        } else if (lead >= 0xe0) {
          length = 3;
        } else if (lead >= 0xc0) {
          length = 2;
        }
        length = std::min(length, token.size() - k);
        auto it = char_to_byte_.find(token.substr(k, length));
        if (it != char_to_byte_.end()) {
          out += static_cast<char>(it->second);
        } else {
          out.append(token, k, length);
        }
        k += length;
      }
    }
    return out;
  }

  int32_t vocab_size() const override { return static_cast<int32_t>(v_.tokens.size()); }
  int32_t bos_token() const override { return v_.bos; }
  int32_t eos_token() const override { return v_.eos; }
  std::optional<int32_t> token_id(std::string_view token) const override {
    auto it = ids_.find(std::string(token));
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  }
  bool is_special(int32_t id) const override {
    return id >= 0 && id < vocab_size() && v_.special[static_cast<size_t>(id)];
  }
  std::string family() const override { return v_.family; }

 private:
  int32_t match_added(std::string_view text, size_t at) const {
    for (int32_t id : added_) {
      const std::string& token = v_.tokens[static_cast<size_t>(id)];
      if (text.compare(at, token.size(), token) == 0) return id;
    }
    return -1;
  }

  Status encode_ordinary(std::string_view text, bool at_start, std::vector<int32_t>& out) const {
    if (text.empty()) return Status::ok();
    std::string prefixed;
    if (v_.add_prefix_space && at_start && text.front() != ' ') {
      prefixed = " " + std::string(text);
      text = prefixed;
    }
    RUNAHEAD_ASSIGN_OR_RETURN(std::vector<std::string_view> pieces, pre_.split(text));
    for (std::string_view piece : pieces) RUNAHEAD_RETURN_IF_ERROR(encode_piece(piece, out));
    return Status::ok();
  }

  Status encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
    const auto& table = byte_to_char_table();
    if (v_.ignore_merges) {
      std::string mapped;
      for (char c : piece) mapped += table[static_cast<unsigned char>(c)];
      auto it = ids_.find(mapped);
      if (it != ids_.end()) {
        out.push_back(it->second);
        return Status::ok();
      }
    }
    std::vector<int32_t> symbols;
    symbols.reserve(piece.size());
    for (char c : piece) {
      const int32_t id = byte_token_[static_cast<unsigned char>(c)];
      if (id < 0) {
        return make_error(ErrorCode::kUnsupported,
                          "the vocabulary has no token for byte " +
                              std::to_string(static_cast<unsigned char>(c)));
      }
      symbols.push_back(id);
    }
    // Merge the pair of lowest rank, leftmost first, until no pair merges.
    while (symbols.size() > 1) {
      int32_t best_rank = std::numeric_limits<int32_t>::max();
      size_t best_at = 0;
      int32_t merged = -1;
      for (size_t k = 0; k + 1 < symbols.size(); ++k) {
        auto it = merges_.find(pair_key(symbols[k], symbols[k + 1]));
        if (it != merges_.end() && it->second.first < best_rank) {
          best_rank = it->second.first;
          best_at = k;
          merged = it->second.second;
        }
      }
      if (merged < 0) break;
      symbols[best_at] = merged;
      symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best_at) + 1);
    }
    out.insert(out.end(), symbols.begin(), symbols.end());
    return Status::ok();
  }

  BpeVocabulary v_;
  PreTokenizer pre_;
  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // -> (rank, merged id)
  std::vector<int32_t> added_;
  std::array<int32_t, 256> byte_token_{};
  std::unordered_map<std::string, uint8_t> char_to_byte_;
};

}  // namespace

const std::vector<std::string>& byte_to_char_table() {
  static const std::vector<std::string> table = [] {
    std::vector<std::string> t(256);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      t[b] = encode_code_point(printable ? b : next++);
    }
    return t;
  }();
  return table;
}

Result<std::unique_ptr<Tokenizer>> make_bpe_tokenizer(BpeVocabulary vocabulary, PreTokenizer pre,
                                                      const std::string& source) {
  auto tokenizer = std::make_unique<BpeTokenizer>(std::move(vocabulary), std::move(pre));
  RUNAHEAD_RETURN_IF_ERROR(tokenizer->build(source));
  return std::unique_ptr<Tokenizer>(std::move(tokenizer));
}

}  // namespace runahead::text
