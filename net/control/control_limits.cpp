#include "net/control/control_limits.h"

#include <fmt/format.h>

namespace runahead::net {

Status ControlLimits::validate() const {
  if (max_frame_bytes < 64 || max_frame_bytes > (1u << 30) || max_frame_bytes % 8 != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("control limit max_frame_bytes={} must be a multiple of 8 in "
                                  "[64, 1 GiB]",
                                  max_frame_bytes));
  }
  if (max_top_logprobs == 0 || max_top_logprobs > max_list_elements) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("control limit max_top_logprobs={} must be in [1, "
                                  "max_list_elements={}]",
                                  max_top_logprobs, max_list_elements));
  }
  if (nesting_limit < 4) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("control limit nesting_limit={} is below 4", nesting_limit));
  }
  if (max_outgoing_messages == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "control limit max_outgoing_messages must be positive");
  }
  if (max_handshake_frame_bytes < 64 || max_handshake_frame_bytes % 8 != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("control limit max_handshake_frame_bytes={} must be a multiple "
                                  "of 8 and at least 64",
                                  max_handshake_frame_bytes));
  }
  if (max_outgoing_bytes < size_t{max_frame_bytes} + 8) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("control limit max_outgoing_bytes={} must hold one frame of "
                                  "max_frame_bytes={} and its header",
                                  max_outgoing_bytes, max_frame_bytes));
  }
  if (max_buffered_bytes < size_t{max_frame_bytes} + 8) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("control limit max_buffered_bytes={} must hold one frame of "
                                  "max_frame_bytes={} and its header",
                                  max_buffered_bytes, max_frame_bytes));
  }
  if (transfer_timeout.count() <= 0 || handshake_timeout.count() <= 0 || idle_timeout.count() < 0 ||
      keepalive_interval.count() < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("control limits: transfer_timeout={} ms and handshake_timeout={} "
                                  "ms must be positive, idle_timeout={} ms and "
                                  "keepalive_interval={} ms not negative",
                                  transfer_timeout.count(), handshake_timeout.count(),
                                  idle_timeout.count(), keepalive_interval.count()));
  }
  if (status_queries_per_second == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "control limit status_queries_per_second must be positive");
  }
  if (max_connections == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "control limit max_connections must be positive");
  }
  if (keepalive.enabled &&
      (keepalive.idle.count() < 1 || keepalive.interval.count() < 1 || keepalive.probes < 1)) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("control limit keepalive (idle {} s, interval {} s, {} probes) "
                    "needs every value at least 1",
                    keepalive.idle.count(), keepalive.interval.count(), keepalive.probes));
  }
  return Status::ok();
}

}  // namespace runahead::net
