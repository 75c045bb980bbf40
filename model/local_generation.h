// Prefill and decode in one process: the prompt as k slices run in turn (the KV-Runahead
// primitive without the network), then token-by-token decoding on the same cache.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/status.h"
#include "model/logprobs.h"
#include "model/transformer.h"

namespace runahead {

struct LocalGenerationOptions {
  int slices = 1;           // even split of the prompt into this many slices
  int max_new_tokens = 16;  // tokens generated, the first one included
  int32_t stop_token = -1;  // stop after emitting this id (-1: never)
  int top_logprobs = 0;     // K > 0: the top K log-probabilities of every position, in result
  // Picks the next token from the logits; greedy (argmax) when empty.
  std::function<int32_t(std::span<const float> logits)> choose;
  // Called with each token as soon as it is chosen (the first token included); returning false
  // ends the generation after this token (a stop string was seen, say).
  std::function<bool(int32_t token)> on_token;
};

struct LocalGenerationResult {
  int32_t first_token = -1;
  std::vector<int32_t> tokens;             // first token and the continuation
  std::vector<float> first_logits;         // logits that chose the first token
  std::vector<PositionLogprobs> logprobs;  // with top_logprobs: one per token, of the raw logits
  double ttft_seconds = 0.0;               // prompt in, first token out
  double decode_seconds = 0.0;             // the continuation
  double decode_tokens_per_second() const {
    return decode_seconds > 0 && tokens.size() > 1
               ? static_cast<double>(tokens.size() - 1) / decode_seconds
               : 0.0;
  }
};

// Slice boundaries of an even split of `tokens` into `slices` (at least one token each).
std::vector<int64_t> even_split(int64_t tokens, int slices);

[[nodiscard]] Result<LocalGenerationResult> generate_local(const Transformer& transformer,
                                                           std::span<const int32_t> prompt,
                                                           const LocalGenerationOptions& options);

}  // namespace runahead
