// A GGUF file (model/gguf.h) from memory: the header, metadata and tensor table parsed as
// GgufFile::open parses a mapped file; then what a loader does next with an accepted file:
// every metadata key read through the typed lookups, small tensors dequantized, and the
// tokenizer built from the tokenizer.ggml.* metadata and run on a short text.
#include <cstdint>
#include <span>
#include <string>

#include "core/mapped_file.h"
#include "fuzz/fuzz_check.h"
#include "model/gguf.h"
#include "text/tokenizer.h"

namespace {

// Dequantizing is linear in the tensor; larger tensors only cost time per input.
constexpr int64_t kMaxDequantizedElements = int64_t{1} << 16;

void read_metadata(const runahead::GgufFile& file) {
  for (const auto& [key, value] : file.metadata()) {
    (void)file.get_int(key);
    (void)file.get_float(key);
    (void)file.get_string(key);
    (void)file.get_string_array(key);
    (void)file.get_int_array(key);
    (void)file.get_float_array(key);
    (void)file.get_bool_or(key, false);
  }
}

void check_tensors(const runahead::GgufFile& file) {
  const uint8_t* begin = file.mapping()->data();
  const uint8_t* end = begin + file.mapping()->size();
  for (const runahead::GgufTensorInfo& tensor : file.tensors()) {
    RUNAHEAD_FUZZ_CHECK(
        tensor.bytes == 0 || (tensor.data >= begin && tensor.data <= end &&
                              tensor.bytes <= static_cast<size_t>(end - tensor.data)),
        "a tensor's data lies outside the file");
    RUNAHEAD_FUZZ_CHECK(file.find_tensor(tensor.name) != nullptr, "a listed tensor is not found");
    if (tensor.elements > kMaxDequantizedElements) continue;
    auto values = runahead::dequantize_tensor(file, tensor);
    if (values.is_ok()) {
      RUNAHEAD_FUZZ_CHECK(values->size() == static_cast<size_t>(tensor.elements),
                          "a dequantized tensor has the wrong number of elements");
    }
  }
}

void run_tokenizer(const runahead::GgufFile& file) {
  auto tokenizer = runahead::text::load_gguf_tokenizer(file);
  if (!tokenizer.is_ok()) return;
  auto ids = (*tokenizer)->encode("Hello, world! 123 <|im_start|>user\n\xc3\xa9t\xc3\xa9");
  if (!ids.is_ok()) return;
  for (const int32_t id : *ids) {
    RUNAHEAD_FUZZ_CHECK(id >= 0 && id < (*tokenizer)->vocab_size(),
                        "an encoded id lies outside the vocabulary");
  }
  (void)(*tokenizer)->decode(*ids);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto mapping =
      runahead::MappedFile::from_bytes("fuzz.gguf", std::span<const uint8_t>(data, size));
  if (!mapping.is_ok()) return 0;
  auto file = runahead::GgufFile::parse(std::move(mapping).value());
  if (!file.is_ok()) return 0;
  read_metadata(**file);
  check_tensors(**file);
  run_tokenizer(**file);
  return 0;
}
