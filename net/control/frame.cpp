#include "net/control/frame.h"

#include <fmt/format.h>

namespace runahead::net {
namespace {

void put_u32(uint8_t* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(value >> (8 * i));
}

uint32_t get_u32(const uint8_t* in) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= static_cast<uint32_t>(in[i]) << (8 * i);
  return value;
}

}  // namespace

FrameHeaderBytes encode_frame_header(uint32_t body_bytes) {
  FrameHeaderBytes header{};
  put_u32(header.data(), kFrameMagic);
  put_u32(header.data() + 4, body_bytes);
  return header;
}

Result<uint32_t> decode_frame_header(std::span<const uint8_t, kFrameHeaderBytes> header,
                                     uint32_t max_body_bytes) {
  const uint32_t magic = get_u32(header.data());
  if (magic != kFrameMagic) {
    return make_error(ErrorCode::kProtocol,
                      fmt::format("bad frame magic 0x{:08x} (expected 0x{:08x}): not a runahead "
                                  "control connection or out of step",
                                  magic, kFrameMagic));
  }
  const uint32_t length = get_u32(header.data() + 4);
  if (length == 0 || length % 8 != 0) {
    return make_error(
        ErrorCode::kProtocol,
        fmt::format("frame body of {} bytes is not a positive multiple of 8", length));
  }
  if (length > max_body_bytes) {
    return make_error(ErrorCode::kProtocol,
                      fmt::format("frame body of {} bytes exceeds the limit of {} bytes", length,
                                  max_body_bytes));
  }
  return length;
}

}  // namespace runahead::net
