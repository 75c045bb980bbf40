#include "model/decode_loop.h"

#include <utility>

#include "model/decode_batch.h"

namespace runahead {

Status decode_tokens(const Transformer& transformer, Workspace& workspace, KvCache& cache,
                     int64_t prompt_tokens, DecodeOptions options) {
  Status result;
  DecodeBatch batch(transformer, 1);
  batch.start(DecodeBatch::Stream{.cache = &cache,
                                  .prompt_tokens = prompt_tokens,
                                  .options = std::move(options),
                                  .ended = [&result](Status status) { result = std::move(status); },
                                  .keep_alive = nullptr},
              workspace);
  while (!batch.empty()) batch.step();
  return result;
}

}  // namespace runahead
