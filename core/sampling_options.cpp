#include "core/sampling_options.h"

#include <cmath>
#include <string>

namespace runahead {

Status SamplingOptions::validate() const {
  if (!(temperature >= 0.0f) || !std::isfinite(temperature)) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "temperature must be 0 (greedy) or positive, got " + std::to_string(temperature));
  }
  if (top_k < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "top-k must be 0 (off) or positive, got " + std::to_string(top_k));
  }
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "top-p must lie in (0, 1], got " + std::to_string(top_p));
  }
  if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty)) {
    return make_error(ErrorCode::kInvalidArgument, "repetition penalty must be positive, got " +
                                                       std::to_string(repetition_penalty));
  }
  return Status::ok();
}

}  // namespace runahead
