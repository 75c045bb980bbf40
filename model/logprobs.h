// Log-probabilities of one position: log-softmax over the whole vocabulary of the raw logits
// (before any sampling transform), the top K of them and the chosen token's. The local
// generation path and the worker both compute them here, so a cluster reports what one process
// does.
#pragma once

#include <cstdint>
#include <span>

#include "core/status.h"
#include "core/token_logprobs.h"

namespace runahead {

// log(sum(exp(logits))) with a double accumulator, shifted by the largest logit so that large
// logits cannot overflow. -inf logits count as probability 0 and NaN ones are left out; when
// every logit is -inf (or the row is empty) the result is -inf.
float log_sum_exp(std::span<const float> logits);

// The top `k` log-probabilities of `logits` and the log-probability of `chosen` (an id of the
// row), each x - max - log(sum(exp(logits - max))) rounded once to fp32. NaN logits rank below
// every number (their value stays NaN); when every logit is -inf every value is -inf. `k` must be
// in [1, logits.size()].
[[nodiscard]] Result<PositionLogprobs> position_logprobs(std::span<const float> logits,
                                                         int32_t chosen, int k);

// kInvalidArgument naming `what` unless 1 <= k <= vocab.
[[nodiscard]] Status validate_top_logprobs(int64_t k, int64_t vocab, const char* what);

}  // namespace runahead
