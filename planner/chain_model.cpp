#include "planner/chain_model.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

namespace runahead {
namespace {

bool non_negative(double value) {
  return std::isfinite(value) && value >= 0.0;
}

}  // namespace

ChainModel ChainModel::uniform(std::vector<WorkerCost> workers, LinkCost link, int layers,
                               double kv_bytes_per_token, double overhead_seconds) {
  ChainModel model;
  const size_t count = workers.size();
  model.workers = std::move(workers);
  model.links.assign(count, std::vector<LinkCost>(count, link));
  model.layers = layers;
  model.kv_bytes_per_token = kv_bytes_per_token;
  model.overhead_seconds = overhead_seconds;
  return model;
}

Status ChainModel::validate() const {
  auto invalid = [](const std::string& what) {
    return make_error(ErrorCode::kInvalidArgument, "chain model: " + what);
  };
  if (workers.empty()) return invalid("no workers");
  if (layers < 1) return invalid("layers must be at least 1, not " + std::to_string(layers));
  if (!non_negative(kv_bytes_per_token)) return invalid("kv_bytes_per_token must be >= 0");
  if (!non_negative(overhead_seconds)) return invalid("overhead_seconds must be >= 0");
  for (size_t i = 0; i < workers.size(); ++i) {
    const WorkerCost& w = workers[i];
    const std::string name = "worker " + std::to_string(i);
    if (!non_negative(w.slice.per_token) || !non_negative(w.slice.per_key) ||
        !non_negative(w.fixed_seconds) || !non_negative(w.per_prefix_token)) {
      return invalid(name + ": cost terms must be finite and >= 0");
    }
    if (w.slice.per_token + w.slice.per_key + w.fixed_seconds <= 0.0) {
      return invalid(name + ": all cost terms are zero");
    }
    if (!(w.qkv_fraction >= 0.0 && w.qkv_fraction <= 1.0)) {
      return invalid(name + ": qkv_fraction must be in [0, 1]");
    }
  }
  if (links.size() != workers.size()) return invalid("links must have one row per worker");
  for (size_t i = 0; i < links.size(); ++i) {
    if (links[i].size() != workers.size()) {
      return invalid("links row " + std::to_string(i) + " must have one entry per worker");
    }
    for (size_t j = i + 1; j < links[i].size(); ++j) {
      if (!non_negative(links[i][j].latency_seconds) ||
          !non_negative(links[i][j].bytes_per_second)) {
        return invalid("link " + std::to_string(i) + " -> " + std::to_string(j) +
                       ": latency and bandwidth must be finite and >= 0");
      }
    }
  }
  return Status::ok();
}

ChainPipeline::ChainPipeline(const ChainModel& model) : model_(&model) {}

void ChainPipeline::add(size_t worker, int64_t begin, int64_t end, int64_t next) {
  const ChainModel& m = *model_;
  const WorkerCost& cost = m.workers[worker];
  const auto layers = static_cast<size_t>(m.layers);
  const int64_t tokens = end - begin;
  const double total =
      cost.seconds(begin, tokens) + (next >= 0 ? cost.forwarding_seconds(begin) : 0.0);
  const double project = cost.qkv_fraction * cost.slice.per_token * static_cast<double>(tokens);
  const double q = project / static_cast<double>(layers);            // before the prefix is needed
  const double f = (total - project) / static_cast<double>(layers);  // attention, projection, MLP
  const double own_bytes = m.kv_bytes_per_token * static_cast<double>(tokens);
  const LinkCost* link = next >= 0 ? &m.link(worker, static_cast<size_t>(next)) : nullptr;
  const double per_byte =
      link != nullptr && link->bytes_per_second > 0.0 ? 1.0 / link->bytes_per_second : 0.0;
  const size_t out_blocks = blocks_ + 1;
  if (link != nullptr) scratch_.resize(layers * out_blocks);
  double done = 0.0;
  double link_free = 0.0;
  for (size_t l = 0; l < layers; ++l) {
    const BlockArrival* in = arrivals_.data() + l * blocks_;
    const double ready = done + q;
    const double prefix = blocks_ == 0 ? 0.0 : in[blocks_ - 1].seconds;
    done = std::max(ready, prefix) + f;
    if (link == nullptr) continue;
    // The link takes blocks in the order they were handed over: forwarded ones as they landed,
    // the own block once projected.
    BlockArrival* out = scratch_.data() + l * out_blocks;
    size_t sent = 0;
    auto transmit = [&](double handed, double bytes) {
      link_free = std::max(handed, link_free) + bytes * per_byte;
      out[sent++] = {link_free + link->latency_seconds, bytes};
    };
    bool own_sent = false;
    for (size_t j = 0; j < blocks_; ++j) {
      if (!own_sent && ready < in[j].seconds) {
        transmit(ready, own_bytes);
        own_sent = true;
      }
      transmit(in[j].seconds, in[j].bytes);
    }
    if (!own_sent) transmit(ready, own_bytes);
  }
  finish_ = done;
  if (link != nullptr) {
    std::swap(arrivals_, scratch_);
    blocks_ = out_blocks;
  } else {
    arrivals_.clear();
    blocks_ = 0;
  }
}

Result<double> predict_ttft(const ChainModel& model, const Partition& cuts,
                            std::span<const size_t> chain) {
  std::vector<size_t> all;
  if (chain.empty()) {
    all.resize(model.workers.size());
    std::iota(all.begin(), all.end(), size_t{0});
    chain = all;
  }
  if (cuts.size() != chain.size() + 1) {
    return make_error(ErrorCode::kInvalidArgument, "predict_ttft: " + std::to_string(cuts.size()) +
                                                       " cut points for " +
                                                       std::to_string(chain.size()) + " workers");
  }
  if (cuts.front() != 0) {
    return make_error(ErrorCode::kInvalidArgument, "predict_ttft: the first cut must be 0");
  }
  for (size_t i = 0; i < chain.size(); ++i) {
    if (chain[i] >= model.workers.size() || (i > 0 && chain[i] <= chain[i - 1])) {
      return make_error(ErrorCode::kInvalidArgument,
                        "predict_ttft: the chain must name workers in increasing order");
    }
    if (cuts[i + 1] <= cuts[i]) {
      return make_error(ErrorCode::kInvalidArgument,
                        "predict_ttft: slice " + std::to_string(i) + " is empty");
    }
  }
  ChainPipeline pipeline(model);
  for (size_t i = 0; i < chain.size(); ++i) {
    const int64_t next = i + 1 < chain.size() ? static_cast<int64_t>(chain[i + 1]) : -1;
    pipeline.add(chain[i], cuts[i], cuts[i + 1], next);
  }
  return pipeline.finish_seconds() + model.overhead_seconds;
}

}  // namespace runahead
