#include "net/data/transport.h"

#include <fmt/format.h>

namespace runahead::net {

std::string describe(const KvBlockHeader& header) {
  return fmt::format("request {} layer {} tokens [{}, {}) {} bytes", header.request_id,
                     header.layer, header.token_begin, header.token_end, header.payload_bytes);
}

Status validate_block_header(const KvBlockHeader& header, const BlockLimits& limits,
                             uint64_t payload_bytes_on_wire) {
  if (header.token_begin < 0 || header.token_end <= header.token_begin) {
    return make_error(ErrorCode::kProtocol,
                      fmt::format("K/V block {}: empty or negative token range", describe(header)));
  }
  if (header.layer >= limits.n_layers) {
    return make_error(ErrorCode::kProtocol,
                      fmt::format("K/V block {}: layer out of range (model has {} layers)",
                                  describe(header), limits.n_layers));
  }
  if (header.payload_bytes != payload_bytes_on_wire) {
    return make_error(ErrorCode::kProtocol,
                      fmt::format("K/V block {}: header claims {} payload bytes, {} on the wire",
                                  describe(header), header.payload_bytes, payload_bytes_on_wire));
  }
  if (header.payload_bytes > limits.max_block_bytes) {
    return make_error(ErrorCode::kResourceExhausted,
                      fmt::format("K/V block {}: payload above the limit of {} bytes",
                                  describe(header), limits.max_block_bytes));
  }
  if (limits.bytes_per_token != 0) {
    const auto tokens = static_cast<uint64_t>(header.token_end - header.token_begin);
    // Division instead of multiplication: the token count is untrusted and may overflow.
    if (header.payload_bytes % limits.bytes_per_token != 0 ||
        header.payload_bytes / limits.bytes_per_token != tokens) {
      return make_error(ErrorCode::kProtocol,
                        fmt::format("K/V block {}: payload disagrees with {} tokens of {} bytes",
                                    describe(header), tokens, limits.bytes_per_token));
    }
  }
  return Status::ok();
}

}  // namespace runahead::net
