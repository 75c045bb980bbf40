// Requests and their results, as the embeddable API and the command line see them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/token_logprobs.h"

namespace runahead {

struct Sampling {
  float temperature = 0.0f;  // 0: greedy
  int top_k = 0;             // 0: no limit
  float top_p = 1.0f;        // 1: no nucleus cut
  float repetition_penalty = 1.0f;
  uint64_t seed = 0;
};

// How the prompt is cut into slices, one per worker; the default leaves it to the coordinator.
struct PartitionOptions {
  enum class Scheme : uint8_t {
    kDefault,   // the coordinator's configured partition
    kBalanced,  // from the workers' cost models, so that all finish together
    kEven,      // equal slices
    kExplicit,  // `cuts` as given
    kSearched,  // the coordinator profile's measured partitions (KVR-S), interpolated for this
                // length (KVR-P); balanced where the profile has none
  };
  Scheme scheme = Scheme::kDefault;
  int workers = 0;            // how many workers (0: the coordinator decides)
  std::vector<int64_t> cuts;  // kExplicit: 0 = c0 < c1 < ... < cP = prompt length, P workers
};

struct RequestOptions {
  std::vector<int32_t> prompt_tokens;
  int max_new_tokens = 16;  // the first token included
  Sampling sampling;
  bool return_logits = false;  // logits of each generated position in RequestResult::logits
  PartitionOptions partition;
  // K > 0: the top K log-probabilities of each generated position (log-softmax of its raw
  // logits over the whole vocabulary, computed on the worker) in RequestResult::logprobs.
  // K may not exceed the vocabulary, nor 1024 (net/control/control_limits.h).
  int top_logprobs = 0;
  bool ignore_eos = false;  // decode past EOS, up to max_new_tokens
  // The request's deadline in milliseconds from its submission (0: none of its own; the
  // coordinator's request timeout applies, and caps it). When it passes, the request is
  // cancelled on every worker and ends with kTimeout; a Client also gives up by itself shortly
  // after it (the coordinator may be unreachable) and cancels the request.
  int64_t timeout_ms = 0;
};

// One layer of one worker: where a request's time went.
struct LayerTimeline {
  uint64_t worker_id = 0;
  int layer = 0;
  double compute_ms = 0.0;
  double wait_ms = 0.0;  // waiting for the predecessor's prefix
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

struct RequestResult {
  uint64_t request_id = 0;
  std::vector<int32_t> tokens;  // the first token, then the continuation
  double ttft_ms = 0.0;         // measured at the coordinator: submitted to first token
  double total_ms = 0.0;
  std::vector<LayerTimeline> timeline;
  std::vector<std::vector<float>> logits;  // when asked for
  std::vector<PositionLogprobs> logprobs;  // with top_logprobs > 0: one per token
  std::vector<int64_t> cuts;  // the partition it ran with: worker i had tokens [cuts[i], cuts[i+1])
};

// Called with each token as it arrives (index 0 is the first token), on a runtime thread.
using TokenCallback = std::function<void(uint64_t request_id, int32_t token, uint32_t index)>;

// One streamed token with its log-probabilities (when the request asked for top_logprobs), for
// callers that stream them as they arrive (the HTTP API).
struct StreamedToken {
  uint64_t request_id = 0;
  int32_t token = 0;
  uint32_t index = 0;  // 0: the first token
  std::optional<PositionLogprobs> logprobs;
};
using StreamCallback = std::function<void(const StreamedToken&)>;

// A submitted request: its first token, its streamed tokens and its final result. Every
// accepted request ends with exactly one result or one error.
class RequestHandle {
 public:
  class State;
  explicit RequestHandle(std::shared_ptr<State> state);
  RequestHandle() = default;

  uint64_t id() const;
  // Blocks until the first token (or the request's error).
  Result<int32_t> first_token() const;
  // Blocks until the next streamed token; nullopt once the stream ended (see result()).
  std::optional<int32_t> next_token() const;
  // Blocks until the request ended.
  Result<RequestResult> result() const;
  // Waits at most `timeout_ms`; kTimeout if the request is still running.
  Result<RequestResult> result_within(int64_t timeout_ms) const;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace runahead
