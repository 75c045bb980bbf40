#include "model/decode_loop.h"

#include <algorithm>
#include <utility>

#include "model/logprobs.h"

namespace runahead {

Status decode_tokens(const Transformer& transformer, Workspace& workspace, KvCache& cache,
                     int64_t prompt_tokens, DecodeOptions options) {
  // The last token is never fed back, so a cache of prompt + n - 1 rows holds n tokens.
  const int64_t count =
      std::min<int64_t>(options.max_new_tokens, cache.capacity() - prompt_tokens + 1);
  Sampler sampler(options.sampling);
  // Only the index leaves the backend where nothing else needs the logits.
  const bool backend_may_choose = !options.choose && sampler.options().greedy() &&
                                  sampler.options().repetition_penalty == 1.0f &&
                                  !options.logits_every_token && options.top_logprobs == 0;
  std::vector<int32_t>& history = options.history;  // grows by each token chosen
  std::vector<float> logits;
  for (int64_t index = 0; index < count; ++index) {
    if (options.interrupted) RUNAHEAD_RETURN_IF_ERROR(options.interrupted());
    if (index > 0) {
      const int32_t previous = history.back();
      RUNAHEAD_RETURN_IF_ERROR(transformer.prefill_slice(
          std::span<const int32_t>(&previous, 1), prompt_tokens + index - 1, workspace, cache));
    }
    DecodedToken decoded;
    decoded.index = index;
    if (backend_may_choose && !(index == 0 && options.logits_first_token)) {
      RUNAHEAD_ASSIGN_OR_RETURN(decoded.token, transformer.last_token_argmax(workspace));
    } else {
      RUNAHEAD_RETURN_IF_ERROR(transformer.last_token_logits(workspace, logits));
      decoded.token = options.choose ? options.choose(logits) : sampler.sample(logits, history);
      decoded.logits = logits;
    }
    history.push_back(decoded.token);
    decoded.last = index + 1 == count || decoded.token == options.stop_token;
    if (options.top_logprobs > 0) {
      RUNAHEAD_ASSIGN_OR_RETURN(decoded.logprobs,
                                position_logprobs(logits, decoded.token, options.top_logprobs));
    }
    const bool last = decoded.last;
    AfterToken after = AfterToken::kContinue;
    if (options.on_token) {
      RUNAHEAD_ASSIGN_OR_RETURN(after, options.on_token(std::move(decoded)));
    }
    if (last || after == AfterToken::kStop) break;
  }
  return Status::ok();
}

}  // namespace runahead
