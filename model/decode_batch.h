// Requests decoding together (continuous batching): each step advances every stream by one
// token in one batched forward pass (Transformer::decode_rows), so the weights are read once
// per step for the whole batch instead of once per request. Streams join after their prefill
// and leave when they end, between steps; each keeps its K/V cache where it is.
//
// Every stream chooses and stops exactly as decode_tokens() (model/decode_loop.h) does for one
// request alone, which is this class with a batch of one.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "core/status.h"
#include "model/decode_loop.h"
#include "model/kv_cache.h"
#include "model/sampler.h"
#include "model/transformer.h"

namespace runahead {

class DecodeBatch {
 public:
  struct Stream {
    uint64_t id = 0;  // named in errors
    KvCache* cache = nullptr;
    int64_t prompt_tokens = 0;  // rows of the cache the prefill filled
    DecodeOptions options;
    // Runs once, when the stream has ended: ok after its last token (its own limits, or kStop
    // from on_token), else the error that ended it.
    std::function<void(Status)> ended;
    // What the cache belongs to: held until the stream has ended.
    std::shared_ptr<void> keep_alive;
  };

  // At most `max_rows` streams advance in one step; more wait their turn, oldest first.
  DecodeBatch(const Transformer& transformer, int64_t max_rows);
  ~DecodeBatch();  // ends the streams still running (kCancelled)
  DecodeBatch(const DecodeBatch&) = delete;
  DecodeBatch& operator=(const DecodeBatch&) = delete;

  // Chooses the stream's first token from the prefill's last hidden state in `prefill` and,
  // unless that ended it, adds the stream to the batch.
  void start(Stream stream, Workspace& prefill);
  // One token for each stream of this turn; the streams that end leave the batch.
  void step();
  // Ends every stream with `reason`.
  void end_all(const Status& reason);

  size_t size() const { return active_.size(); }
  bool empty() const { return active_.empty(); }
  int64_t max_rows() const { return max_rows_; }

 private:
  struct Active;

  // Hands token `index` to the stream; false when the stream has ended.
  bool emit(Active& active, int32_t token, std::span<const float> logits);
  void end(Active& active, Status status);

  const Transformer& transformer_;
  const int64_t max_rows_;
  Workspace workspace_;  // for max_rows_ tokens and their logits, allocated at the first step
  std::deque<std::unique_ptr<Active>> active_;
  std::vector<float> logits_;
};

}  // namespace runahead
