#include "text/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace runahead::text {

const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Pattern =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace {

struct CodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};
using Code = std::unique_ptr<pcre2_code, CodeDeleter>;

struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};

}  // namespace

struct PreTokenizer::Impl {
  std::vector<Code> splits;
  std::vector<std::string> patterns;
};

PreTokenizer::PreTokenizer() : impl_(std::make_unique<Impl>()) {}
PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;

bool PreTokenizer::empty() const {
  return impl_->splits.empty();
}

Status PreTokenizer::add_split(const std::string& pattern) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  // UCP: \s, \w and \d follow Unicode properties, as in the reference (Rust/Oniguruma) regexes.
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error_code,
                                   &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof message);
    return make_error(ErrorCode::kInvalidArgument, "pre-tokenizer pattern '" + pattern +
                                                       "' does not compile at offset " +
                                                       std::to_string(error_offset) + ": " +
                                                       reinterpret_cast<const char*>(message));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; falls back when absent
  impl_->splits.emplace_back(code);
  impl_->patterns.push_back(pattern);
  return Status::ok();
}

Result<PreTokenizer> PreTokenizer::for_gguf_pre(const std::string& name) {
  PreTokenizer pre;
  std::vector<std::string> patterns;
  if (name == "default" || name == "gpt-2" || name == "gpt2" || name.empty()) {
    patterns = {kGpt2Pattern};
  } else if (name == "llama-bpe" || name == "llama3" || name == "llama-v3" || name == "falcon3" ||
             name == "dbrx" || name == "smaug-bpe") {
    patterns = {kLlama3Pattern};
  } else if (name == "smollm" || name == "starcoder" || name == "refact" || name == "command-r" ||
             name == "codeshell" || name == "exaone" || name == "minerva-7b") {
    // Digits one by one, then the GPT-2 split (Hugging Face: Digits + ByteLevel).
    patterns = {R"(\p{N})", kGpt2Pattern};
  } else if (name == "qwen2" || name == "deepseek-r1-qwen") {
    patterns = {kQwen2Pattern};
  } else {
    return make_error(ErrorCode::kUnsupported,
                      "tokenizer.ggml.pre '" + name +
                          "' is not supported (supported: gpt2/default, llama-bpe, smollm and "
                          "the starcoder family, qwen2)");
  }
  for (const std::string& pattern : patterns) RUNAHEAD_RETURN_IF_ERROR(pre.add_split(pattern));
  return pre;
}

Result<std::vector<std::string_view>> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string_view> pieces = {text};
  if (text.empty()) return std::vector<std::string_view>{};
  for (size_t s = 0; s < impl_->splits.size(); ++s) {
    pcre2_code* code = impl_->splits[s].get();
    std::unique_ptr<pcre2_match_data, MatchDataDeleter> match(
        pcre2_match_data_create_from_pattern(code, nullptr));
    std::vector<std::string_view> next;
    for (std::string_view piece : pieces) {
      size_t offset = 0;
      size_t emitted = 0;
      while (offset <= piece.size()) {
        const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(piece.data()), piece.size(),
                                   offset, PCRE2_NO_UTF_CHECK, match.get(), nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          return make_error(ErrorCode::kInternal, "pre-tokenizer pattern '" + impl_->patterns[s] +
                                                      "' failed with PCRE2 error " +
                                                      std::to_string(rc));
        }
        const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
        const size_t begin = ovector[0];
        const size_t end = ovector[1];
        if (begin > emitted) next.push_back(piece.substr(emitted, begin - emitted));
        if (end > begin) {
          next.push_back(piece.substr(begin, end - begin));
          emitted = end;
          offset = end;
        } else {
          // An empty match: step over one whole character.
          size_t step = 1;
          while (begin + step < piece.size() &&
                 (static_cast<unsigned char>(piece[begin + step]) & 0xc0) == 0x80) {
            ++step;
          }
          offset = begin + step;
        }
      }
      if (emitted < piece.size()) next.push_back(piece.substr(emitted));
    }
    pieces = std::move(next);
  }
  return pieces;
}

}  // namespace runahead::text
