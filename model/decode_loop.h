// The decoding that follows a prefill: choose a token from the prompt's last hidden state, feed
// it back, choose the next, until a limit or a stop token. One loop for every path that
// generates (a single process, model/local_generation.h, and the last worker of a chain,
// actors/worker_compute.h), so that they choose the same tokens and stop at the same place.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "core/status.h"
#include "core/token_logprobs.h"
#include "model/kv_cache.h"
#include "model/sampler.h"
#include "model/transformer.h"

namespace runahead {

// One token as the loop hands it on.
struct DecodedToken {
  int64_t index = 0;  // 0: the first token, from the prompt
  int32_t token = -1;
  // The loop ends after this token by its own limits: max new tokens, the cache's end, the stop
  // token.
  bool last = false;
  // The raw logits that chose it; empty where the backend chose it and only the index came back.
  std::span<const float> logits;
  std::optional<PositionLogprobs> logprobs;  // with top_logprobs, of the raw logits
};

// What the per-token callback wants next.
enum class AfterToken : uint8_t { kContinue, kStop };

struct DecodeOptions {
  int64_t max_new_tokens = 1;  // the first token included; at least 1
  int32_t stop_token = -1;     // ends the decoding once emitted (-1: none)
  int top_logprobs = 0;        // K > 0: every token comes with its top K log-probabilities
  // Greedy by default; the draws are reproducible for a seed.
  SamplingOptions sampling;
  // Tokens before the first generated one that the repetition penalty sees (the prompt).
  std::vector<int32_t> history;
  // Replaces `sampling`: picks the next token from the raw logits.
  std::function<int32_t(std::span<const float> logits)> choose;
  // Read every token's logits back (DecodedToken::logits), not only where sampling needs them.
  bool logits_every_token = false;
  // Read the first token's logits back (a caller that reports them), whatever chooses it.
  bool logits_first_token = false;
  // Asked before each token is computed; an error ends the decoding with it (cancellation).
  std::function<Status()> interrupted;
  // Called with each token as soon as it is chosen; kStop ends the decoding after it, an error
  // ends it with that error.
  std::function<Result<AfterToken>(DecodedToken token)> on_token;
};

// Decodes after a prefill of `prompt_tokens` tokens into `cache` whose last hidden state is in
// `workspace`. Token i > 0 is computed at position prompt_tokens + i - 1, so the cache bounds the
// count: at most cache.capacity() - prompt_tokens + 1 tokens. The logits come back to the host
// only where something needs them (sampling, a repetition penalty, log-probabilities, the
// options above); otherwise the backend picks the argmax and only the index leaves it.
[[nodiscard]] Status decode_tokens(const Transformer& transformer, Workspace& workspace,
                                   KvCache& cache, int64_t prompt_tokens, DecodeOptions options);

}  // namespace runahead
