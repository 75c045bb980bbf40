#include "actors/request_admission.h"

#include <algorithm>
#include <string>

#include "model/config.h"
#include "model/logprobs.h"
#include "net/control/control_limits.h"

namespace runahead {
namespace {

// A request's own partition must fit its prompt; whether enough workers exist is decided when
// it is planned.
Status validate_partition_choice(const PartitionChoice& choice, size_t prompt_tokens) {
  if (choice.scheme != PartitionScheme::kExplicit) {
    if (!choice.cuts.empty()) {
      return make_error(ErrorCode::kInvalidArgument, "cut points need the explicit scheme");
    }
    if (choice.workers > prompt_tokens) {
      return make_error(ErrorCode::kInvalidArgument, std::to_string(choice.workers) +
                                                         " workers for a prompt of " +
                                                         std::to_string(prompt_tokens) + " tokens");
    }
    return Status::ok();
  }
  const auto& cuts = choice.cuts;
  bool increasing = cuts.size() >= 2 && cuts.front() == 0 && cuts.back() == prompt_tokens;
  for (size_t i = 1; increasing && i < cuts.size(); ++i) increasing = cuts[i] > cuts[i - 1];
  if (!increasing) {
    return make_error(ErrorCode::kInvalidArgument,
                      "explicit cut points must rise strictly from 0 to the prompt length " +
                          std::to_string(prompt_tokens));
  }
  if (choice.workers != 0 && choice.workers != cuts.size() - 1) {
    return make_error(ErrorCode::kInvalidArgument, std::to_string(cuts.size() - 1) +
                                                       " slices for " +
                                                       std::to_string(choice.workers) + " workers");
  }
  return Status::ok();
}

std::string request_name(uint64_t id) {
  return "request " + std::to_string(id);
}

}  // namespace

Status check_request(uint64_t id, const net::SubmitRequest& submit) {
  auto refuse = [&](const std::string& why) {
    return make_error(ErrorCode::kInvalidArgument, request_name(id) + ": " + why);
  };
  if (submit.prompt_tokens.empty()) return refuse("empty prompt");
  if (submit.max_new_tokens < 1) return refuse("max new tokens must be at least 1");
  if (Status valid = submit.sampling.validate(); !valid.is_ok()) return refuse(valid.message());
  const uint32_t most_logprobs = net::ControlLimits{}.max_top_logprobs;
  if (submit.top_logprobs > most_logprobs) {
    return refuse("top log-probabilities K=" + std::to_string(submit.top_logprobs) +
                  " is above the limit of " + std::to_string(most_logprobs));
  }
  if (Status valid = validate_partition_choice(submit.partition, submit.prompt_tokens.size());
      !valid.is_ok()) {
    return refuse(valid.message());
  }
  return Status::ok();
}

Status fit_to_model(uint64_t id, net::SubmitRequest& submit, const ModelLimits& limits) {
  const auto prompt = static_cast<int64_t>(submit.prompt_tokens.size());
  if (limits.max_positions > 0 && prompt > limits.max_positions) {
    // Out of range, as a single process reports it (model/local_generation.cpp).
    return make_error(ErrorCode::kOutOfRange,
                      request_name(id) + ": the prompt has " + std::to_string(prompt) +
                          " tokens, more than the model's limit of " +
                          std::to_string(limits.max_positions) + " positions");
  }
  if (limits.vocab_size > 0) {
    const auto vocab = static_cast<int32_t>(limits.vocab_size);
    for (size_t i = 0; i < submit.prompt_tokens.size(); ++i) {
      const int32_t token = submit.prompt_tokens[i];
      if (token < 0 || token >= vocab) {
        return make_error(ErrorCode::kOutOfRange,
                          request_name(id) + ": prompt token " + std::to_string(i) + " has id " +
                              std::to_string(token) + ", outside the vocabulary [0, " +
                              std::to_string(vocab) + ")");
      }
    }
    if (submit.top_logprobs > 0) {
      if (Status valid = validate_top_logprobs(submit.top_logprobs, vocab, "top_logprobs");
          !valid.is_ok()) {
        return make_error(ErrorCode::kInvalidArgument, request_name(id) + ": " + valid.message());
      }
    }
  }
  if (Status window = check_sliding_window(static_cast<int>(limits.sliding_window),
                                           "the cluster's model " + limits.model, prompt,
                                           submit.max_new_tokens);
      !window.is_ok()) {
    return make_error(window.code(), request_name(id) + ": " + window.message());
  }
  if (limits.max_positions > 0) {
    // The last generated token is never fed back: a full context still yields one token.
    const int64_t room = static_cast<int64_t>(limits.max_positions) - prompt + 1;
    submit.max_new_tokens =
        static_cast<uint32_t>(std::min<int64_t>(submit.max_new_tokens, std::max<int64_t>(room, 1)));
  }
  return Status::ok();
}

}  // namespace runahead
