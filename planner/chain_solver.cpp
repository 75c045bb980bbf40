#include "planner/chain_solver.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "planner/cut_moves.h"

namespace runahead {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

// cost(s, n) = fixed + a n + b n (s + n / 2), all terms >= 0; within a budget T the slice may
// not end past (T - cap_offset) * cap_scale (a link that must carry every token before it, in
// every layer), when cap_scale > 0.
struct Term {
  double fixed = 0.0;
  double a = 0.0;
  double b = 0.0;
  double cap_scale = 0.0;
  double cap_offset = 0.0;

  double seconds(int64_t begin, int64_t tokens) const {
    const auto n = static_cast<double>(tokens);
    return fixed + a * n + b * n * (static_cast<double>(begin) + n / 2.0);
  }
};

// The most tokens a worker starting at `begin` can take within `budget` (real-valued).
double tokens_within(const Term& term, double begin, double budget) {
  const double room = budget - term.fixed;
  if (room < 0.0) return -1.0;
  const double linear = term.a + term.b * begin;
  if (term.b <= 0.0) return linear > 0.0 ? room / linear : 1e30;
  const double half_b = term.b / 2.0;
  return (-linear + std::sqrt(linear * linear + 4.0 * half_b * room)) / (2.0 * half_b);
}

// Cuts of [begin, end) over terms.size() workers whose largest cost is at most `budget`, each
// worker taking all it can in turn; since reaching e from s costs less the larger s is, this
// succeeds whenever any partition does.
bool greedy_fits(std::span<const Term> terms, int64_t begin, int64_t end, double budget,
                 Partition* cuts) {
  const size_t workers = terms.size();
  if (cuts != nullptr) cuts->assign(workers + 1, begin);
  for (size_t i = 0; i < workers; ++i) {
    int64_t limit = end - static_cast<int64_t>(workers - 1 - i) - begin;
    if (terms[i].cap_scale > 0.0) {
      const double cap = (budget - terms[i].cap_offset) * terms[i].cap_scale;
      if (cap < static_cast<double>(begin + limit)) {
        limit = static_cast<int64_t>(std::floor(cap)) - begin;
      }
    }
    if (limit < 1) return false;
    const double estimate = tokens_within(terms[i], static_cast<double>(begin), budget);
    auto n =
        static_cast<int64_t>(std::clamp(std::floor(estimate), 0.0, static_cast<double>(limit)));
    while (n < limit && terms[i].seconds(begin, n + 1) <= budget) ++n;
    while (n > 0 && terms[i].seconds(begin, n) > budget) --n;
    if (n < 1 || (i + 1 == workers && begin + n != end)) return false;
    begin += n;
    if (cuts != nullptr) (*cuts)[i + 1] = begin;
  }
  return true;
}

struct Makespan {
  double lower = 0.0;  // no partition has a smaller largest cost
  double upper = 0.0;  // `cuts` reach it
  Partition cuts;
};

// The smallest largest cost over the partitions of [begin, end), by bisection on the budget.
Makespan min_makespan(std::span<const Term> terms, int64_t begin, int64_t end) {
  Makespan result;
  const auto workers = static_cast<int64_t>(terms.size());
  double high = 0.0;
  for (int64_t i = 0; i < workers; ++i) {
    const int64_t from = begin + (end - begin) * i / workers;
    const int64_t to = begin + (end - begin) * (i + 1) / workers;
    high = std::max(high, terms[static_cast<size_t>(i)].seconds(from, to - from));
  }
  // Link caps can make the even split's budget too small.
  for (int doubling = 0; doubling < 200 && !greedy_fits(terms, begin, end, high, nullptr);
       ++doubling) {
    high = high > 0.0 ? high * 2.0 : 1e-12;
  }
  double low = 0.0;
  for (int iteration = 0; iteration < 100 && high - low > 1e-13 * high; ++iteration) {
    const double middle = low + (high - low) / 2.0;
    if (middle <= low || middle >= high) break;
    (greedy_fits(terms, begin, end, middle, nullptr) ? high : low) = middle;
  }
  greedy_fits(terms, begin, end, high, &result.cuts);
  result.lower = low;
  result.upper = high;
  return result;
}

class Search {
 public:
  Search(const ChainModel& model, int64_t tokens, const SolverOptions& options, size_t& nodes)
      : model_(model), tokens_(tokens), options_(options), nodes_(nodes) {}

  // Improves `best` with a partition over `chain` if there is a better one; true when every
  // integer partition over the chain was covered (searched or bounded away).
  bool solve(const std::vector<size_t>& chain, ChainPlan& best) {
    chain_ = chain;
    const size_t p = chain.size();
    const auto layers = static_cast<double>(model_.layers);
    step_ = std::max<int64_t>(
        1, std::min<int64_t>((tokens_ + options_.grid_positions - 1) / options_.grid_positions,
                             tokens_ / static_cast<int64_t>(p)));
    // Bound terms per chain position: what each worker must do before the last can finish.
    const WorkerCost& last = model_.workers[chain.back()];
    last_attend_min_ = (last.fixed_seconds + (1.0 - last.qkv_fraction) * last.slice.per_token +
                        last.slice.per_key * (static_cast<double>(tokens_) - 0.5)) /
                       layers;
    travel_latency_.assign(p, 0.0);
    travel_per_byte_.assign(p, 0.0);
    for (size_t i = p - 1; i-- > 0;) {
      const LinkCost& link = model_.link(chain[i], chain[i + 1]);
      travel_latency_[i] = travel_latency_[i + 1] + link.latency_seconds;
      travel_per_byte_[i] = travel_per_byte_[i + 1] +
                            (link.bytes_per_second > 0.0 ? 1.0 / link.bytes_per_second : 0.0);
    }
    bound_terms_.resize(p);
    cost_terms_.resize(p);
    for (size_t i = 0; i < p; ++i) {
      const WorkerCost& w = model_.workers[chain[i]];
      cost_terms_[i] = {w.fixed_seconds, w.slice.per_token, w.slice.per_key};
      if (i + 1 == p) {
        bound_terms_[i] = cost_terms_[i];
      } else {
        const double share = (layers - 1.0) / layers;
        // The link after position i carries every token before its cut in every layer, and
        // the last of those blocks must still reach the last worker.
        const LinkCost& link = model_.link(chain[i], chain[i + 1]);
        const double bytes = layers * model_.kv_bytes_per_token;
        bound_terms_[i] = {
            w.fixed_seconds * share + last_attend_min_ + travel_latency_[i],
            w.slice.per_token * (share + w.qkv_fraction / layers) +
                model_.kv_bytes_per_token * travel_per_byte_[i],
            w.slice.per_key * share,
            link.bytes_per_second > 0.0 && bytes > 0.0 ? link.bytes_per_second / bytes : 0.0,
            travel_latency_[i] + last_attend_min_};
      }
    }
    memo_.assign(p, std::vector<double>(static_cast<size_t>(tokens_ / step_ + 2), -1.0));

    // Root bound: no partition over this chain can beat it.
    const double root = min_makespan(bound_terms_, 0, tokens_).lower + model_.overhead_seconds;
    if (root >= best.predicted_seconds) return true;

    // Starting points: balanced for the makespan, balanced for the bound, even.
    std::vector<Partition> starts;
    starts.push_back(min_makespan(cost_terms_, 0, tokens_).cuts);
    starts.push_back(min_makespan(bound_terms_, 0, tokens_).cuts);
    if (auto even = even_partition(tokens_, static_cast<int>(p))) starts.push_back(*even);
    Partition hint;
    double hint_seconds = kInfinity;
    for (const Partition& start : starts) {
      const double seconds = evaluate(start);
      if (seconds < hint_seconds) {
        hint_seconds = seconds;
        hint = start;
      }
    }
    exhausted_ = false;
    refine(hint, hint_seconds, std::max<int64_t>(1, step_));
    offer(hint, hint_seconds, best);
    hint_ = hint;

    stack_.assign(p, ChainPipeline(model_));
    cuts_.assign(p + 1, 0);
    cuts_[p] = tokens_;
    if (p == 1) {
      offer(cuts_, evaluate(cuts_), best);
    } else {
      descend(0, best);
    }
    if (step_ > 1 && best.chain == chain_) {
      Partition cuts = best.cuts;
      double seconds = best.predicted_seconds;
      refine(cuts, seconds, step_ / 2);
      offer(cuts, seconds, best);
    }
    return !exhausted_ && step_ == 1;
  }

 private:
  double evaluate(const Partition& cuts) {
    ++nodes_;
    scratch_.reset();
    for (size_t i = 0; i < chain_.size(); ++i) {
      const int64_t next = i + 1 < chain_.size() ? static_cast<int64_t>(chain_[i + 1]) : -1;
      scratch_.add(chain_[i], cuts[i], cuts[i + 1], next);
    }
    return scratch_.finish_seconds() + model_.overhead_seconds;
  }

  void offer(const Partition& cuts, double seconds, ChainPlan& best) const {
    if (seconds < best.predicted_seconds) {
      best.chain = chain_;
      best.cuts = cuts;
      best.predicted_seconds = seconds;
    }
  }

  bool valid(const Partition& cuts) const {
    for (size_t i = 0; i + 1 < cuts.size(); ++i) {
      if (cuts[i + 1] <= cuts[i]) return false;
    }
    return cuts.front() == 0 && cuts.back() == tokens_;
  }

  // Pattern search from `cuts`: moves of `step` tokens, halved down to one, of every cut
  // alone, of neighbouring pairs together, and (up to four cuts) of every combination.
  void refine(Partition& cuts, double& seconds, int64_t step) {
    const size_t interior = cuts.size() - 2;
    if (interior == 0) return;
    const std::vector<std::vector<int>> moves = cut_moves(interior);
    // Within the search's evaluation budget, which later chains share.
    size_t budget =
        std::min<size_t>(20000, options_.node_limit > nodes_ ? options_.node_limit - nodes_ : 0);
    if (budget == 0) exhausted_ = true;
    for (; step >= 1; step /= 2) {
      bool improved = true;
      while (improved && budget > 0) {
        improved = false;
        for (const std::vector<int>& move : moves) {
          Partition trial = cuts;
          for (size_t i = 0; i < interior; ++i) trial[i + 1] += move[i] * step;
          if (!valid(trial)) continue;
          if (budget == 0) {
            exhausted_ = true;
            break;
          }
          --budget;
          const double t = evaluate(trial);
          if (t < seconds) {
            seconds = t;
            cuts = std::move(trial);
            improved = true;
          }
        }
      }
    }
  }

  // The bound for chain positions k.. over [begin, tokens): memoized per grid position.
  double remainder_bound(size_t k, int64_t begin) {
    double& slot = memo_[k][static_cast<size_t>(begin / step_)];
    if (begin % step_ != 0) {
      return min_makespan(std::span<const Term>(bound_terms_).subspan(k), begin, tokens_).lower;
    }
    if (slot < 0.0) {
      slot = min_makespan(std::span<const Term>(bound_terms_).subspan(k), begin, tokens_).lower;
    }
    return slot;
  }

  // Cut k (the end of position k's slice) chosen; the pipeline of positions < k is stack_[k].
  void descend(size_t k, ChainPlan& best) {
    const size_t p = chain_.size();
    const int64_t begin = cuts_[k];
    if (k + 1 == p) {
      scratch_ = stack_[k];
      scratch_.add(chain_[k], begin, tokens_, -1);
      ++nodes_;
      cuts_[p] = tokens_;
      offer(cuts_, scratch_.finish_seconds() + model_.overhead_seconds, best);
      return;
    }
    // Candidate ends of position k's slice on the grid, nearest the hint first.
    const auto remaining = static_cast<int64_t>(p - 1 - k);
    const int64_t first = (begin / step_ + 1) * step_;
    const int64_t last_allowed = tokens_ - remaining;
    if (first > last_allowed) return;
    std::vector<int64_t> candidates;
    for (int64_t end = first; end <= last_allowed; end += step_) candidates.push_back(end);
    const int64_t target = hint_[k + 1];
    std::stable_sort(candidates.begin(), candidates.end(), [&](int64_t x, int64_t y) {
      return std::llabs(x - target) < std::llabs(y - target);
    });
    const Term& own = bound_terms_[k];
    for (int64_t end : candidates) {
      if (nodes_ >= options_.node_limit) {
        exhausted_ = true;
        return;
      }
      const double overhead = model_.overhead_seconds;
      const double rest = remainder_bound(k + 1, end);
      if (rest + overhead >= best.predicted_seconds ||
          own.seconds(begin, end - begin) + overhead >= best.predicted_seconds) {
        continue;
      }
      stack_[k + 1] = stack_[k];
      stack_[k + 1].add(chain_[k], begin, end, static_cast<int64_t>(chain_[k + 1]));
      ++nodes_;
      // Blocks of the last layer still have to reach the last worker, which then attends.
      double in_flight = 0.0;
      const auto last_layer = stack_[k + 1].arrivals(model_.layers - 1);
      for (const BlockArrival& block : last_layer) {
        in_flight = std::max(in_flight, block.seconds + travel_latency_[k + 1] +
                                            block.bytes * travel_per_byte_[k + 1]);
      }
      if (std::max(in_flight + last_attend_min_, rest) + overhead >= best.predicted_seconds) {
        continue;
      }
      cuts_[k + 1] = end;
      descend(k + 1, best);
      if (exhausted_) return;
    }
  }

  const ChainModel& model_;
  int64_t tokens_;
  const SolverOptions& options_;
  size_t& nodes_;
  std::vector<size_t> chain_;
  int64_t step_ = 1;
  double last_attend_min_ = 0.0;
  std::vector<double> travel_latency_;   // from position i to the last, summed over the links
  std::vector<double> travel_per_byte_;  // seconds per byte from position i to the last
  std::vector<Term> bound_terms_;
  std::vector<Term> cost_terms_;
  std::vector<std::vector<double>> memo_;
  Partition hint_;
  std::vector<ChainPipeline> stack_;
  ChainPipeline scratch_{model_};
  Partition cuts_;
  bool exhausted_ = false;
};

std::vector<std::vector<size_t>> candidate_chains(size_t workers, int64_t tokens,
                                                  bool allow_fewer) {
  std::vector<std::vector<size_t>> chains;
  std::vector<size_t> all(workers);
  std::iota(all.begin(), all.end(), size_t{0});
  if (!allow_fewer) {
    chains.push_back(all);
  } else if (workers <= 8) {
    for (size_t mask = (size_t{1} << workers) - 1; mask > 0; --mask) {
      std::vector<size_t> chain;
      for (size_t i = 0; i < workers; ++i) {
        if ((mask >> i) & 1U) chain.push_back(i);
      }
      chains.push_back(std::move(chain));
    }
    std::stable_sort(chains.begin(), chains.end(),
                     [](const auto& x, const auto& y) { return x.size() > y.size(); });
  } else {
    for (size_t count = workers; count >= 1; --count) {
      chains.emplace_back(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(count));
    }
  }
  std::erase_if(chains,
                [&](const auto& chain) { return static_cast<int64_t>(chain.size()) > tokens; });
  return chains;
}

}  // namespace

Result<ChainPlan> fastest_partition(const ChainModel& model, int64_t tokens,
                                    const SolverOptions& options) {
  RUNAHEAD_RETURN_IF_ERROR(model.validate());
  const size_t workers = model.workers.size();
  if (tokens < 1 || (!options.allow_fewer_workers && tokens < static_cast<int64_t>(workers))) {
    return make_error(ErrorCode::kInvalidArgument,
                      "partition: " + std::to_string(tokens) + " tokens cannot be split over " +
                          std::to_string(options.allow_fewer_workers ? 1 : workers) + " workers");
  }
  if (options.grid_positions < 1) {
    return make_error(ErrorCode::kInvalidArgument, "partition: grid_positions must be >= 1");
  }
  ChainPlan best;
  best.predicted_seconds = kInfinity;
  best.exhaustive = true;
  size_t nodes = 0;
  const auto chains = candidate_chains(workers, tokens, options.allow_fewer_workers);
  for (const std::vector<size_t>& chain : chains) {
    Search search(model, tokens, options, nodes);
    const bool complete = search.solve(chain, best);
    best.exhaustive = best.exhaustive && complete;
  }
  if (options.allow_fewer_workers && workers > 8) best.exhaustive = false;
  if (best.cuts.empty()) {
    return make_error(ErrorCode::kInternal, "partition: the search found no partition");
  }
  return best;
}

}  // namespace runahead
