#include "actors/assignment_plan.h"

#include <algorithm>
#include <string>

#include "model/logprobs.h"

namespace runahead {
namespace {

static_assert(sizeof(net::KvCapability::bytes) == net::kKvCapabilityBytes);

// The checks that need no plan; each names what is wrong.
Status check_assignment(const net::AssignSlice& assign, uint64_t worker_id,
                        const ModelConfig& config) {
  auto invalid = [](std::string why) { return make_error(ErrorCode::kInvalidArgument, why); };
  if (assign.index >= assign.chain.size()) return invalid("its position is outside the chain");
  if (assign.chain[assign.index].worker_id != worker_id) {
    return invalid("the chain places another worker at this position");
  }
  if (assign.slice_begin >= assign.slice_end || assign.slice_end > assign.total_prompt_tokens) {
    return invalid("invalid slice [" + std::to_string(assign.slice_begin) + ", " +
                   std::to_string(assign.slice_end) + ") of " +
                   std::to_string(assign.total_prompt_tokens) + " tokens");
  }
  if (assign.tokens.size() != assign.slice_end - assign.slice_begin) {
    return invalid("the slice holds " + std::to_string(assign.tokens.size()) + " tokens, not " +
                   std::to_string(assign.slice_end - assign.slice_begin));
  }
  if (assign.total_prompt_tokens > static_cast<uint64_t>(config.max_positions)) {
    // Out of range, as a single process reports it (model/local_generation.cpp).
    return make_error(ErrorCode::kOutOfRange, "the prompt has " +
                                                  std::to_string(assign.total_prompt_tokens) +
                                                  " tokens, more than the model's limit of " +
                                                  std::to_string(config.max_positions));
  }
  const bool last = assign.index + 1 == assign.chain.size();
  if (last && assign.max_new_tokens < 1) return invalid("max new tokens must be at least 1");
  // The coordinator refuses these before dispatch; a worker checks too, whoever assigns.
  if (Status window = check_sliding_window(config.sliding_window, config.architecture_name,
                                           static_cast<int64_t>(assign.total_prompt_tokens),
                                           assign.max_new_tokens);
      !window.is_ok()) {
    return invalid(window.message());
  }
  if (Status valid = assign.sampling.validate(); !valid.is_ok()) {
    return invalid(valid.message());
  }
  if (assign.top_logprobs > 0) {
    const Status valid =
        validate_top_logprobs(assign.top_logprobs, config.vocab_size, "top_logprobs");
    if (!valid.is_ok()) return invalid(valid.message());
  }
  return Status::ok();
}

DecodePlan decode_plan(const net::AssignSlice& assign, const ModelConfig& config) {
  DecodePlan decode;
  decode.prompt_tokens = static_cast<int64_t>(assign.total_prompt_tokens);
  decode.max_new_tokens = assign.max_new_tokens;
  decode.sampling = assign.sampling;
  decode.history.reserve(assign.history_tokens.size() + assign.tokens.size());
  decode.history.assign(assign.history_tokens.begin(), assign.history_tokens.end());
  decode.history.insert(decode.history.end(), assign.tokens.begin(), assign.tokens.end());
  decode.top_logprobs = static_cast<int>(assign.top_logprobs);
  decode.return_logits = assign.return_logits;
  decode.stop_token = assign.ignore_eos ? -1 : config.eos_token;
  return decode;
}

}  // namespace

Result<AssignmentPlan> plan_assignment(const net::AssignSlice& assign, uint64_t worker_id,
                                       const ModelConfig& config, size_t staging_chunk_bytes,
                                       const DirectPath& direct_path) {
  RUNAHEAD_RETURN_IF_ERROR(check_assignment(assign, worker_id, config));
  const size_t index = assign.index;
  const size_t workers = assign.chain.size();
  const bool last = index + 1 == workers;

  AssignmentPlan plan;
  SlicePlan& slice = plan.slice;
  slice.request_id = assign.request_id;
  slice.worker_id = worker_id;
  slice.capability.bytes = assign.kv_capability;
  slice.begin = static_cast<int64_t>(assign.slice_begin);
  slice.end = static_cast<int64_t>(assign.slice_end);
  slice.staging_chunk_bytes = staging_chunk_bytes;
  // The last worker keeps the prompt and every generated token but the last, never fed back.
  slice.cache_tokens = last ? std::min<int64_t>(static_cast<int64_t>(assign.total_prompt_tokens) +
                                                    assign.max_new_tokens - 1,
                                                config.max_positions)
                            : slice.end;

  plan.direct_to_all = workers > 1;
  for (size_t i = 0; i < workers; ++i) {
    if (i != index)
      plan.direct_to_all = plan.direct_to_all && direct_path(assign.chain[i].data_plane_address);
  }
  if (!last) {
    const net::ChainMember& next = assign.chain[index + 1];
    slice.successor = next.worker_id;
    slice.hold_sends = true;  // until StartSlice: the successor may not know the request yet
    slice.outbound = direct_path(next.data_plane_address) ? KvRoute::kDirectWrite : KvRoute::kSend;
    for (size_t i = index + 1; i < workers; ++i) {
      slice.later_workers.push_back(assign.chain[i].worker_id);
      // Later ones only for fan-out.
      if (i == index + 1 || plan.direct_to_all) plan.connect.push_back(assign.chain[i]);
    }
  }
  if (index > 0) {
    slice.inbound = direct_path(assign.chain[index - 1].data_plane_address) ? KvRoute::kDirectWrite
                                                                            : KvRoute::kSend;
    // K/V comes from the predecessor; where the coordinator may choose fan-out (every pair
    // direct, more than two workers), each earlier worker writes its own rows here too.
    const bool fan_out_possible = plan.direct_to_all && workers > 2;
    for (size_t i = fan_out_possible ? 0 : index - 1; i < index; ++i) {
      slice.senders.push_back(assign.chain[i].worker_id);
    }
  }
  if (last) plan.decode = decode_plan(assign, config);
  return plan;
}

}  // namespace runahead
