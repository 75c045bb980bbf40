#include "text/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "model/gguf.h"
#include "text/utf8.h"

namespace runahead::text {
namespace {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> processor,
                         bool add_bos, bool add_eos)
      : sp_(std::move(processor)), add_bos_(add_bos), add_eos_(add_eos) {
    for (int id = 0; id < sp_->GetPieceSize(); ++id) {
      if (sp_->IsControl(id) && !sp_->IdToPiece(id).empty()) controls_.push_back(id);
    }
  }

  Result<std::vector<int32_t>> encode(std::string_view text, bool add_special) const override {
    RUNAHEAD_RETURN_IF_ERROR(validate_utf8(text));
    std::vector<int32_t> out;
    if (add_special && add_bos_ && bos_token() >= 0) out.push_back(bos_token());
    // Control pieces written in the text (<s>, </s>) are taken as tokens, as Hugging Face
    // does; the text between them is encoded piece by piece.
    size_t start = 0;
    size_t i = 0;
    while (i < text.size()) {
      int32_t match = -1;
      for (int32_t id : controls_) {
        const std::string& piece = sp_->IdToPiece(id);
        if (text.compare(i, piece.size(), piece) == 0) {
          match = id;
          break;
        }
      }
      if (match < 0) {
        ++i;
        continue;
      }
      RUNAHEAD_RETURN_IF_ERROR(encode_plain(text.substr(start, i - start), out));
      out.push_back(match);
      i += sp_->IdToPiece(match).size();
      start = i;
    }
    RUNAHEAD_RETURN_IF_ERROR(encode_plain(text.substr(start), out));
    if (add_special && add_eos_ && eos_token() >= 0) out.push_back(eos_token());
    return out;
  }

  Result<std::string> decode_bytes(std::span<const int32_t> ids, bool skip_special) const override {
    std::vector<int> plain;
    std::string out;
    auto flush = [&]() -> Status {
      if (plain.empty()) return Status::ok();
      std::string piece;
      const auto status = sp_->Decode(plain, &piece);
      if (!status.ok()) {
        return make_error(ErrorCode::kInternal, "sentencepiece decode: " + status.ToString());
      }
      out += piece;
      plain.clear();
      return Status::ok();
    };
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab_size()) {
        return make_error(ErrorCode::kOutOfRange, "token id " + std::to_string(id) +
                                                      " is outside the vocabulary of " +
                                                      std::to_string(vocab_size()));
      }
      if (sp_->IsControl(id)) {
        RUNAHEAD_RETURN_IF_ERROR(flush());
        if (!skip_special) out += sp_->IdToPiece(id);
        continue;
      }
      plain.push_back(id);
    }
    RUNAHEAD_RETURN_IF_ERROR(flush());
    return out;
  }

  int32_t vocab_size() const override { return sp_->GetPieceSize(); }
  int32_t bos_token() const override { return sp_->bos_id(); }
  int32_t eos_token() const override { return sp_->eos_id(); }
  std::optional<int32_t> token_id(std::string_view token) const override {
    const int id = sp_->PieceToId(std::string(token));
    if (id == sp_->unk_id() && token != sp_->IdToPiece(sp_->unk_id())) return std::nullopt;
    return id;
  }
  bool is_special(int32_t id) const override {
    return id >= 0 && id < vocab_size() && sp_->IsControl(id);
  }
  std::string family() const override { return "sentencepiece"; }

 private:
  Status encode_plain(std::string_view text, std::vector<int32_t>& out) const {
    if (text.empty()) return Status::ok();
    std::vector<int> ids;
    const auto status = sp_->Encode(text, &ids);
    if (!status.ok()) {
      return make_error(ErrorCode::kInternal, "sentencepiece encode: " + status.ToString());
    }
    out.insert(out.end(), ids.begin(), ids.end());
    return Status::ok();
  }

  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  bool add_bos_;
  bool add_eos_;
  std::vector<int32_t> controls_;
};

// Minimal protobuf writer for the few ModelProto fields a GGUF vocabulary fills.
class ProtoWriter {
 public:
  void varint(uint64_t value) {
    while (value >= 0x80) {
      out_ += static_cast<char>((value & 0x7f) | 0x80);
      value >>= 7;
    }
    out_ += static_cast<char>(value);
  }
  void tag(int field, int wire_type) { varint(static_cast<uint64_t>(field << 3 | wire_type)); }
  void int_field(int field, int64_t value) {
    tag(field, 0);
    varint(static_cast<uint64_t>(value));  // negative int32 as ten bytes, as protobuf does
  }
  void float_field(int field, float value) {
    tag(field, 5);
    char bytes[4];
    std::memcpy(bytes, &value, 4);
    out_.append(bytes, 4);
  }
  void bytes_field(int field, const std::string& value) {
    tag(field, 2);
    varint(value.size());
    out_ += value;
  }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

}  // namespace

Result<std::unique_ptr<Tokenizer>> make_sentencepiece_tokenizer(const std::string& serialized,
                                                                const std::string& source,
                                                                bool add_bos, bool add_eos) {
  auto processor = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = processor->LoadFromSerializedProto(serialized);
  if (!status.ok()) {
    return make_error(ErrorCode::kCorruptData,
                      source + ": not a loadable SentencePiece model: " + status.ToString());
  }
  return std::unique_ptr<Tokenizer>(
      std::make_unique<SentencePieceTokenizer>(std::move(processor), add_bos, add_eos));
}

Result<std::unique_ptr<Tokenizer>> load_sentencepiece(const std::string& path, bool add_bos) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, path + ": cannot open the tokenizer model");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return make_sentencepiece_tokenizer(bytes.str(), path, add_bos, false);
}

Result<std::unique_ptr<Tokenizer>> load_gguf_sentencepiece(const GgufFile& file) {
  const std::string& path = file.path();
  RUNAHEAD_ASSIGN_OR_RETURN(std::vector<std::string> tokens,
                            file.get_string_array("tokenizer.ggml.tokens"));
  std::vector<double> scores(tokens.size(), 0.0);
  if (file.find("tokenizer.ggml.scores")) {
    RUNAHEAD_ASSIGN_OR_RETURN(scores, file.get_float_array("tokenizer.ggml.scores"));
  }
  std::vector<int64_t> types(tokens.size(), 1);
  if (file.find("tokenizer.ggml.token_type")) {
    RUNAHEAD_ASSIGN_OR_RETURN(types, file.get_int_array("tokenizer.ggml.token_type"));
  }
  if (scores.size() != tokens.size() || types.size() != tokens.size()) {
    return make_error(ErrorCode::kCorruptData,
                      path +
                          ": tokenizer.ggml.scores/token_type and tokenizer.ggml.tokens "
                          "differ in length");
  }
  RUNAHEAD_ASSIGN_OR_RETURN(int64_t unk, file.get_int_or("tokenizer.ggml.unknown_token_id", 0));
  RUNAHEAD_ASSIGN_OR_RETURN(int64_t bos, file.get_int_or("tokenizer.ggml.bos_token_id", 1));
  RUNAHEAD_ASSIGN_OR_RETURN(int64_t eos, file.get_int_or("tokenizer.ggml.eos_token_id", 2));
  RUNAHEAD_ASSIGN_OR_RETURN(bool add_bos, file.get_bool_or("tokenizer.ggml.add_bos_token", true));
  RUNAHEAD_ASSIGN_OR_RETURN(bool add_eos, file.get_bool_or("tokenizer.ggml.add_eos_token", false));
  RUNAHEAD_ASSIGN_OR_RETURN(bool space_prefix,
                            file.get_bool_or("tokenizer.ggml.add_space_prefix", true));
  bool has_bytes = false;
  ProtoWriter model;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int64_t type = types[i];
    if (type < 1 || type > 6) {
      return make_error(ErrorCode::kCorruptData, path + ": tokenizer.ggml.token_type[" +
                                                     std::to_string(i) + "] is " +
                                                     std::to_string(type) + " (1 to 6 allowed)");
    }
    has_bytes = has_bytes || type == 6;
    ProtoWriter piece;
    piece.bytes_field(1, tokens[i]);
    piece.float_field(2, static_cast<float>(scores[i]));
    piece.int_field(3, type);
    model.bytes_field(1, piece.str());
  }
  ProtoWriter trainer;
  trainer.int_field(3, 2);  // model_type BPE, as llama.cpp's SPM vocabularies are
  trainer.int_field(4, static_cast<int64_t>(tokens.size()));
  trainer.int_field(35, has_bytes ? 1 : 0);  // byte_fallback
  trainer.int_field(40, unk);
  trainer.int_field(41, bos);
  trainer.int_field(42, eos);
  trainer.int_field(43, -1);
  model.bytes_field(2, trainer.str());
  ProtoWriter normalizer;
  normalizer.bytes_field(1, "identity");
  normalizer.int_field(3, space_prefix ? 1 : 0);  // add_dummy_prefix
  normalizer.int_field(4, 0);                     // remove_extra_whitespaces
  normalizer.int_field(5, 1);                     // escape_whitespaces
  model.bytes_field(3, normalizer.str());
  return make_sentencepiece_tokenizer(model.str(), path, add_bos, add_eos);
}

}  // namespace runahead::text
