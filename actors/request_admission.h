// Admission of a request at the coordinator, before any worker sees it: what a request must
// satisfy on its own (a prompt, sane sampling, a partition that fits it) and against the
// cluster's model (its context, vocabulary and sliding window). Every refusal names the request
// and the limit, so a client learns at once what to change.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "net/control/control_messages.h"

namespace runahead {

// What the cluster's model accepts, as its workers said at Hello (0: not said, not checked).
struct ModelLimits {
  uint32_t max_positions = 0;   // the context: prompt and generated tokens
  uint32_t vocab_size = 0;      // every token id lies in [0, vocab_size)
  uint32_t sliding_window = 0;  // requests of more positions are refused (0: none)
  std::string model;            // names the model in messages
};

// The checks that need no model: a non-empty prompt, at least one new token, sampling options
// that are finite and in range, top-K log-probabilities within the control plane's limit and a
// partition that fits the prompt. kInvalidArgument naming request `id` and the limit.
[[nodiscard]] Status check_request(uint64_t id, const net::SubmitRequest& submit);

// The checks against the model: the prompt within the context (kOutOfRange, both lengths
// named), every token id within the vocabulary (kOutOfRange, the position and id named), top-K
// within the vocabulary, and the sliding window (kUnsupported). Max new tokens is then lowered
// to what the context holds (prompt + max_new_tokens - 1 <= max_positions: the last token is
// never fed back), so generation stops at the context as one process stops. Idempotent.
[[nodiscard]] Status fit_to_model(uint64_t id, net::SubmitRequest& submit,
                                  const ModelLimits& limits);

}  // namespace runahead
