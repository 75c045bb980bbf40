// Which tokens each GPU of a tensor/sequence-parallel (TSP) prefill holds, and how the per-layer
// all-gathers put every rank's K/V rows where the attention expects them (cache row t = token t).
//
// tsp-paper: the KV-Runahead paper's baseline. An even contiguous split; one all-gather.
// tsp-strong: the zigzag split of ring-attention systems. The prompt is cut into 2P chunks and
// rank r holds chunks r and 2P-1-r, so every rank's causal attention work is the same. The first
// chunks (0..P-1) land in rank order with an ordinary all-gather; the second chunks (2P-1..P)
// lie in reverse rank order, so they are gathered on a second communicator whose ranks are
// numbered backwards: rank r is its rank P-1-r, and the chunk lands in place without a copy.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace runahead::tsp {

enum class Scheme : uint8_t { kPaper, kStrong };

[[nodiscard]] Result<Scheme> parse_scheme(std::string_view name);  // "tsp-paper", "tsp-strong"
std::string scheme_name(Scheme scheme);

// Tokens [begin, end) of the prompt.
struct Chunk {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
  bool operator==(const Chunk&) const = default;
};

// One all-gather per layer: every rank contributes the chunk at index `chunk` of its own list,
// `rows_per_rank` rows, into the cache rows [first_row, first_row + ranks * rows_per_rank).
// On the reversed communicator rank r contributes at slot ranks-1-r.
struct Gather {
  size_t chunk = 0;
  int64_t first_row = 0;
  int64_t rows_per_rank = 0;
  bool reversed = false;
};

struct Plan {
  Scheme scheme = Scheme::kPaper;
  int64_t context = 0;
  int ranks = 0;
  // Per rank, its chunks in the order their rows sit in its activations.
  std::vector<std::vector<Chunk>> chunks;
  std::vector<Gather> gathers;

  int64_t tokens_of(int rank) const;
  // The rank holding the prompt's last token, and that token's row in its activations.
  int last_token_rank() const;
  int64_t last_token_row() const;
};

// Errors name the context and rank count when the context does not split into equal parts
// (an all-gather moves the same count from every rank).
[[nodiscard]] Result<Plan> make_plan(Scheme scheme, int64_t context, int ranks);

// The cache row where `rank`'s contribution to `gather` lands.
int64_t gather_destination(const Gather& gather, int ranks, int rank);

// Query-key pairs of `rank`'s attention: the dense [n, context] rectangle for tsp-paper (the
// paper's masked attention), the causal prefix of each chunk for tsp-strong.
int64_t attention_pairs(const Plan& plan, int rank);

}  // namespace runahead::tsp
