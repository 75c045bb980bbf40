#include "model/local_generation.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "model/decode_loop.h"

namespace runahead {

std::vector<int64_t> even_split(int64_t tokens, int slices) {
  const int64_t count = std::clamp<int64_t>(slices, 1, std::max<int64_t>(tokens, 1));
  std::vector<int64_t> cuts(static_cast<size_t>(count + 1));
  for (int64_t i = 0; i <= count; ++i) cuts[i] = tokens * i / count;
  return cuts;
}

Result<LocalGenerationResult> generate_local(const Transformer& transformer,
                                             std::span<const int32_t> prompt,
                                             const LocalGenerationOptions& options) {
  using Clock = std::chrono::steady_clock;
  const ModelConfig& c = transformer.config();
  if (prompt.empty()) return make_error(ErrorCode::kInvalidArgument, "the prompt is empty");
  if (options.slices < 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "slices must be at least 1, got " + std::to_string(options.slices));
  }
  if (options.max_new_tokens < 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "max-new-tokens must be at least 1 (the first token), got " +
                          std::to_string(options.max_new_tokens));
  }
  if (options.top_logprobs != 0) {
    RUNAHEAD_RETURN_IF_ERROR(
        validate_top_logprobs(options.top_logprobs, c.vocab_size, "top_logprobs"));
  }
  const auto prompt_tokens = static_cast<int64_t>(prompt.size());
  if (prompt_tokens > c.max_positions) {
    return make_error(ErrorCode::kOutOfRange, "the prompt has " + std::to_string(prompt_tokens) +
                                                  " tokens, more than the model's limit of " +
                                                  std::to_string(c.max_positions));
  }
  RUNAHEAD_RETURN_IF_ERROR(check_sliding_window(c.sliding_window, c.architecture_name,
                                                prompt_tokens, options.max_new_tokens));
  // The last generated token is never fed back, so the cache needs one row less.
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] < 0 || prompt[i] >= c.vocab_size) {
      return make_error(ErrorCode::kOutOfRange, "prompt token " + std::to_string(i) + " has id " +
                                                    std::to_string(prompt[i]) +
                                                    ", outside the vocabulary [0, " +
                                                    std::to_string(c.vocab_size) + ")");
    }
  }
  const int64_t total =
      std::min<int64_t>(prompt_tokens + options.max_new_tokens - 1, c.max_positions);
  const std::vector<int64_t> cuts = even_split(prompt_tokens, options.slices);
  int64_t widest = 1;
  for (size_t i = 0; i + 1 < cuts.size(); ++i) widest = std::max(widest, cuts[i + 1] - cuts[i]);

  Backend& backend = transformer.backend();
  RUNAHEAD_ASSIGN_OR_RETURN(KvCache cache, KvCache::create(backend, c, total));
  RUNAHEAD_ASSIGN_OR_RETURN(Workspace ws, transformer.make_workspace(widest));
  LocalGenerationResult result;
  Clock::time_point start;  // prompt in
  Clock::time_point first;  // first token out
  DecodeOptions decode;
  decode.max_new_tokens = options.max_new_tokens;
  decode.stop_token = options.stop_token;
  decode.top_logprobs = options.top_logprobs;
  decode.choose = options.choose;
  decode.logits_first_token = true;  // the result reports them
  decode.on_token = [&](DecodedToken decoded) -> Result<AfterToken> {
    if (decoded.index == 0) {
      result.first_token = decoded.token;
      result.first_logits.assign(decoded.logits.begin(), decoded.logits.end());
      first = Clock::now();
      result.ttft_seconds = std::chrono::duration<double>(first - start).count();
    }
    if (decoded.logprobs) result.logprobs.push_back(std::move(*decoded.logprobs));
    result.tokens.push_back(decoded.token);
    const bool go_on = !options.on_token || options.on_token(decoded.token);
    return go_on ? AfterToken::kContinue : AfterToken::kStop;
  };

  start = Clock::now();
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    RUNAHEAD_RETURN_IF_ERROR(transformer.prefill_slice(
        prompt.subspan(static_cast<size_t>(cuts[i]), static_cast<size_t>(cuts[i + 1] - cuts[i])),
        cuts[i], ws, cache));
  }
  RUNAHEAD_RETURN_IF_ERROR(decode_tokens(transformer, ws, cache, prompt_tokens, std::move(decode)));
  result.decode_seconds = std::chrono::duration<double>(Clock::now() - first).count();
  return result;
}

}  // namespace runahead
