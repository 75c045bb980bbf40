// What an assignment asks of a worker, read once and checked: the rows it computes and caches,
// whom it receives from and sends to, whether it may fan its K/V out to every later worker,
// and, for the last worker of the chain, the decoding it does. A pure function of the
// assignment, the model and which peers the data plane reaches directly; the worker actor acts
// on the result (connects, creates the SliceRun, queues the computation).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "actors/slice_run.h"
#include "core/status.h"
#include "model/config.h"
#include "model/sampler.h"
#include "net/control/control_messages.h"

namespace runahead {

// The decoding of the last worker of a chain, on the complete cache.
struct DecodePlan {
  int64_t prompt_tokens = 0;   // the whole prompt
  int64_t max_new_tokens = 1;  // the first token included
  SamplingOptions sampling;
  std::vector<int32_t> history;  // the whole prompt, for the repetition penalty
  int top_logprobs = 0;
  bool return_logits = false;  // every token's logits go to the coordinator
  int32_t stop_token = -1;     // end of sequence, unless the request ignores it
};

struct AssignmentPlan {
  // For SliceRun: this worker's rows, its cache rows, successor, direct paths, later workers.
  SlicePlan slice;
  // Every other worker of the chain is written directly (and writes here): the coordinator may
  // have each worker send its own K/V to all later ones at once (SliceReady::direct_to_all).
  bool direct_to_all = false;
  // Data-plane peers to connect before the run, in chain order: the successor, and with
  // direct_to_all every later worker too.
  std::vector<net::ChainMember> connect;
  std::optional<DecodePlan> decode;  // last in the chain: the first token and what follows
};

// Whether the data plane writes directly between this worker and a peer at this address.
using DirectPath = std::function<bool(const std::vector<uint8_t>& data_plane_address)>;

// Checks `assign` for the worker `worker_id` serving a model of `config` and plans it. An error
// (kInvalidArgument; kOutOfRange for a prompt past the model's limit) says what is wrong,
// without naming the worker or the request.
[[nodiscard]] Result<AssignmentPlan> plan_assignment(const net::AssignSlice& assign,
                                                     uint64_t worker_id, const ModelConfig& config,
                                                     size_t staging_chunk_bytes,
                                                     const DirectPath& direct_path);

}  // namespace runahead
