#include "bench/tsp/tsp_plan.h"

namespace runahead::tsp {

Result<Scheme> parse_scheme(std::string_view name) {
  if (name == "tsp-paper") return Scheme::kPaper;
  if (name == "tsp-strong") return Scheme::kStrong;
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown TSP scheme '" + std::string(name) + "' (tsp-paper, tsp-strong)");
}

std::string scheme_name(Scheme scheme) {
  return scheme == Scheme::kPaper ? "tsp-paper" : "tsp-strong";
}

int64_t Plan::tokens_of(int rank) const {
  int64_t n = 0;
  for (const Chunk& c : chunks[static_cast<size_t>(rank)]) n += c.size();
  return n;
}

int Plan::last_token_rank() const {
  for (int r = 0; r < ranks; ++r) {
    for (const Chunk& c : chunks[static_cast<size_t>(r)]) {
      if (c.end == context) return r;
    }
  }
  return -1;
}

int64_t Plan::last_token_row() const {
  const int r = last_token_rank();
  if (r < 0) return -1;
  int64_t row = 0;
  for (const Chunk& c : chunks[static_cast<size_t>(r)]) {
    row += c.size();
    if (c.end == context) return row - 1;
  }
  return -1;
}

Result<Plan> make_plan(Scheme scheme, int64_t context, int ranks) {
  if (ranks <= 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "TSP needs at least one rank, got " + std::to_string(ranks));
  }
  const int64_t parts = scheme == Scheme::kPaper ? ranks : 2 * int64_t{ranks};
  if (context <= 0 || context % parts != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      scheme_name(scheme) + ": a context of " + std::to_string(context) +
                          " tokens does not split into " + std::to_string(parts) +
                          " equal non-empty chunks for " + std::to_string(ranks) + " ranks");
  }
  const int64_t chunk = context / parts;
  Plan plan;
  plan.scheme = scheme;
  plan.context = context;
  plan.ranks = ranks;
  plan.chunks.resize(static_cast<size_t>(ranks));
  for (int r = 0; r < ranks; ++r) {
    auto& mine = plan.chunks[static_cast<size_t>(r)];
    mine.push_back({r * chunk, (r + 1) * chunk});
    if (scheme == Scheme::kStrong) {
      const int64_t mirror = parts - 1 - r;
      mine.push_back({mirror * chunk, (mirror + 1) * chunk});
    }
  }
  plan.gathers.push_back({.chunk = 0, .first_row = 0, .rows_per_rank = chunk, .reversed = false});
  if (scheme == Scheme::kStrong) {
    plan.gathers.push_back(
        {.chunk = 1, .first_row = ranks * chunk, .rows_per_rank = chunk, .reversed = true});
  }
  return plan;
}

int64_t gather_destination(const Gather& gather, int ranks, int rank) {
  const int slot = gather.reversed ? ranks - 1 - rank : rank;
  return gather.first_row + slot * gather.rows_per_rank;
}

int64_t attention_pairs(const Plan& plan, int rank) {
  if (plan.scheme == Scheme::kPaper) return plan.tokens_of(rank) * plan.context;
  int64_t pairs = 0;
  for (const Chunk& c : plan.chunks[static_cast<size_t>(rank)]) {
    pairs += c.size() * c.begin + c.size() * (c.size() + 1) / 2;
  }
  return pairs;
}

}  // namespace runahead::tsp
