// A safetensors file (model/safetensors.h) from memory: header length, JSON header, dtypes,
// shapes, offsets and overlaps checked as SafetensorsFile::open checks a mapped file; every
// accepted tensor must lie inside the file, aligned to its element size, and be readable as a
// host tensor.
#include <cstdint>
#include <span>

#include "core/dtype.h"
#include "core/mapped_file.h"
#include "fuzz/fuzz_check.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto mapping =
      runahead::MappedFile::from_bytes("fuzz.safetensors", std::span<const uint8_t>(data, size));
  if (!mapping.is_ok()) return 0;
  const uint8_t* begin = (*mapping)->data();
  const uint8_t* end = begin + (*mapping)->size();
  auto file = runahead::SafetensorsFile::parse(std::move(mapping).value());
  if (!file.is_ok()) return 0;
  for (const auto& [name, tensor] : (*file)->tensors()) {
    RUNAHEAD_FUZZ_CHECK(name == tensor.name, "a tensor is listed under another name");
    if (tensor.bytes > 0) {
      RUNAHEAD_FUZZ_CHECK(
          reinterpret_cast<uintptr_t>(tensor.data) % runahead::dtype_size(tensor.dtype) == 0,
          "a tensor's data is not aligned to its element size");
      // Misaligned tensors are copied out of the mapping; read every byte wherever it is.
      uint8_t sum = 0;
      for (size_t i = 0; i < tensor.bytes; ++i) sum ^= tensor.data[i];
      (void)sum;
      if (tensor.data >= begin && tensor.data < end) {
        RUNAHEAD_FUZZ_CHECK(tensor.bytes <= static_cast<size_t>(end - tensor.data),
                            "a tensor's data runs past the end of the file");
      }
    }
    auto host = (*file)->host_tensor(name);
    if (host.is_ok()) {
      RUNAHEAD_FUZZ_CHECK(host->rows >= 0 && host->cols >= 0 &&
                              static_cast<uint64_t>(host->rows) *
                                      static_cast<uint64_t>(host->cols) *
                                      runahead::dtype_size(host->dtype) ==
                                  tensor.bytes,
                          "a host tensor's shape disagrees with its bytes");
    }
  }
  return 0;
}
