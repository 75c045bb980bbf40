#include "model/decode_batch.h"

#include <algorithm>
#include <string>
#include <utility>

#include "model/logprobs.h"

namespace runahead {

struct DecodeBatch::Active {
  Stream stream;
  Sampler sampler;
  int64_t count = 0;       // tokens this stream may emit
  int64_t next_index = 0;  // the index of its next token
  // Only the index needs to leave the backend (greedy, nothing reads the logits).
  bool backend_may_choose = false;
  bool ended = false;
};

DecodeBatch::DecodeBatch(const Transformer& transformer, int64_t max_rows)
    : transformer_(transformer), max_rows_(std::max<int64_t>(1, max_rows)) {}

DecodeBatch::~DecodeBatch() {
  end_all(make_error(ErrorCode::kCancelled, "the decoding batch was stopped"));
}

void DecodeBatch::end(Active& active, Status status) {
  if (active.ended) return;
  active.ended = true;
  if (active.stream.ended) active.stream.ended(std::move(status));
  active.stream.keep_alive.reset();
}

void DecodeBatch::end_all(const Status& reason) {
  for (auto& active : active_) end(*active, reason);
  active_.clear();
}

bool DecodeBatch::emit(Active& active, int32_t token, std::span<const float> logits) {
  DecodeOptions& options = active.stream.options;
  DecodedToken decoded;
  decoded.index = active.next_index;
  decoded.token = token;
  decoded.logits = logits;
  options.history.push_back(token);
  decoded.last = active.next_index + 1 == active.count || token == options.stop_token;
  if (options.top_logprobs > 0) {
    auto logprobs = position_logprobs(logits, token, options.top_logprobs);
    if (!logprobs) {
      end(active, logprobs.status());
      return false;
    }
    decoded.logprobs = std::move(logprobs).value();
  }
  ++active.next_index;
  const bool last = decoded.last;
  AfterToken after = AfterToken::kContinue;
  if (options.on_token) {
    auto answer = options.on_token(std::move(decoded));
    if (!answer) {
      end(active, answer.status());
      return false;
    }
    after = *answer;
  }
  if (last || after == AfterToken::kStop) {
    end(active, Status::ok());
    return false;
  }
  return true;
}

void DecodeBatch::start(Stream stream, Workspace& prefill) {
  Sampler sampler(stream.options.sampling);
  auto active =
      std::make_unique<Active>(Active{.stream = std::move(stream), .sampler = std::move(sampler)});
  Stream& s = active->stream;
  DecodeOptions& options = s.options;
  // The last token is never fed back, so a cache of prompt + n - 1 rows holds n tokens.
  active->count =
      std::min<int64_t>(options.max_new_tokens, s.cache->capacity() - s.prompt_tokens + 1);
  active->backend_may_choose = !options.choose && active->sampler.options().greedy() &&
                               active->sampler.options().repetition_penalty == 1.0f &&
                               !options.logits_every_token && options.top_logprobs == 0;
  if (active->count <= 0) {
    end(*active, Status::ok());
    return;
  }
  if (options.interrupted) {
    if (Status interrupted = options.interrupted(); !interrupted.is_ok()) {
      end(*active, std::move(interrupted));
      return;
    }
  }
  int32_t token = -1;
  std::span<const float> logits;
  if (active->backend_may_choose && !options.logits_first_token) {
    auto chosen = transformer_.last_token_argmax(prefill);
    if (!chosen) {
      end(*active, chosen.status());
      return;
    }
    token = *chosen;
  } else {
    if (Status read = transformer_.last_token_logits(prefill, logits_); !read.is_ok()) {
      end(*active, std::move(read));
      return;
    }
    logits = logits_;
    token =
        options.choose ? options.choose(logits) : active->sampler.sample(logits, options.history);
  }
  if (emit(*active, token, logits)) active_.push_back(std::move(active));
}

void DecodeBatch::step() {
  if (active_.empty()) return;
  if (workspace_.capacity == 0) {
    auto workspace = transformer_.make_workspace(max_rows_, max_rows_);
    if (!workspace) {
      end_all(workspace.status());
      return;
    }
    workspace_ = std::move(workspace).value();
  }
  // This turn's streams: the oldest max_rows_ of those still running; they go to the back after.
  std::vector<Active*> turn;
  std::vector<DecodeRow> rows;
  const int64_t model_vocab = transformer_.config().vocab_size;
  bool read_logits = false;
  for (size_t i = 0; i < active_.size() && static_cast<int64_t>(turn.size()) < max_rows_; ++i) {
    Active& active = *active_[i];
    const DecodeOptions& options = active.stream.options;
    if (options.interrupted) {
      if (Status interrupted = options.interrupted(); !interrupted.is_ok()) {
        end(active, std::move(interrupted));
        continue;
      }
    }
    DecodeRow row{.token = options.history.back(),
                  .position = active.stream.prompt_tokens + active.next_index - 1,
                  .cache = active.stream.cache};
    if (Status checked = transformer_.check_rows(std::span<const DecodeRow>(&row, 1), workspace_);
        !checked.is_ok()) {
      end(active, make_error(checked.code(), "request " + std::to_string(active.stream.id) + ": " +
                                                 checked.message()));
      continue;
    }
    rows.push_back(row);
    turn.push_back(&active);
    read_logits = read_logits || !active.backend_may_choose;
  }
  if (!rows.empty()) {
    transformer_.decode_rows(rows, workspace_);
    std::vector<int32_t> chosen;
    Status computed;
    if (read_logits) {
      computed = transformer_.rows_logits(workspace_, logits_);
    } else {
      auto argmax = transformer_.rows_argmax(workspace_);
      if (argmax) chosen = std::move(argmax).value();
      computed = argmax.status();
    }
    for (size_t r = 0; r < turn.size(); ++r) {
      Active& active = *turn[r];
      if (!computed.is_ok()) {
        end(active, computed);
        continue;
      }
      if (!read_logits) {
        (void)emit(active, chosen[r], {});
        continue;
      }
      const std::span<const float> row_logits(logits_.data() + r * static_cast<size_t>(model_vocab),
                                              static_cast<size_t>(model_vocab));
      DecodeOptions& options = active.stream.options;
      int32_t token = -1;
      if (options.choose) {
        token = options.choose(row_logits);
      } else if (active.backend_may_choose) {
        token = argmax(row_logits);
      } else {
        token = active.sampler.sample(row_logits, options.history);
      }
      // Logits go with the token only to a stream that reads them (as decode_tokens does).
      (void)emit(active, token, active.backend_may_choose ? std::span<const float>{} : row_logits);
    }
  }
  // Ended streams leave; this turn's survivors move behind the streams that waited.
  std::deque<std::unique_ptr<Active>> waiting;
  std::deque<std::unique_ptr<Active>> served;
  for (auto& active : active_) {
    if (active->ended) continue;
    const bool was_served = std::find(turn.begin(), turn.end(), active.get()) != turn.end();
    (was_served ? served : waiting).push_back(std::move(active));
  }
  active_ = std::move(waiting);
  for (auto& active : served) active_.push_back(std::move(active));
}

}  // namespace runahead
