#include "planner/cost_fit.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>

namespace runahead {
namespace {

constexpr size_t kTerms = 4;  // fixed, a, b, c

std::array<double, kTerms> features(const ComputeSample& sample) {
  const auto n = static_cast<double>(sample.tokens);
  const auto s = static_cast<double>(sample.begin);
  return {1.0, n, n * (s + n / 2.0), sample.forwards ? s : 0.0};
}

// Solves the small system a x = y in place (Gaussian elimination with partial pivoting);
// false when it is singular.
bool solve(std::vector<std::vector<double>> a, std::vector<double> y, std::vector<double>& x) {
  const size_t n = y.size();
  for (size_t col = 0; col < n; ++col) {
    size_t pivot = col;
    for (size_t row = col + 1; row < n; ++row) {
      if (std::abs(a[row][col]) > std::abs(a[pivot][col])) pivot = row;
    }
    if (std::abs(a[pivot][col]) < 1e-12) return false;
    std::swap(a[pivot], a[col]);
    std::swap(y[pivot], y[col]);
    for (size_t row = col + 1; row < n; ++row) {
      const double factor = a[row][col] / a[col][col];
      for (size_t k = col; k < n; ++k) a[row][k] -= factor * a[col][k];
      y[row] -= factor * y[col];
    }
  }
  x.assign(n, 0.0);
  for (size_t col = n; col-- > 0;) {
    double sum = y[col];
    for (size_t k = col + 1; k < n; ++k) sum -= a[col][k] * x[k];
    x[col] = sum / a[col][col];
  }
  return true;
}

// Relative errors of predictions `predicted` + overhead against `measured`.
double relative_sse(const std::vector<double>& predicted, std::span<const TtftSample> samples,
                    double overhead) {
  double sum = 0.0;
  for (size_t i = 0; i < samples.size(); ++i) {
    const double error = (predicted[i] + overhead - samples[i].seconds) / samples[i].seconds;
    sum += error * error;
  }
  return sum;
}

Status check_samples(std::span<const TtftSample> samples) {
  if (samples.empty()) return make_error(ErrorCode::kInvalidArgument, "link fit: no samples");
  for (size_t i = 0; i < samples.size(); ++i) {
    if (!(samples[i].seconds > 0.0) || !std::isfinite(samples[i].seconds)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "link fit: sample " + std::to_string(i) + " has no positive time");
    }
  }
  return Status::ok();
}

}  // namespace

Result<ComputeFit> fit_compute(std::span<const ComputeSample> samples, double qkv_fraction) {
  std::vector<ComputeSample> usable;
  for (const ComputeSample& sample : samples) {
    if (sample.seconds > 0.0 && std::isfinite(sample.seconds) && sample.tokens > 0 &&
        sample.begin >= 0) {
      usable.push_back(sample);
    }
  }
  if (usable.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "compute fit: no sample with a positive time");
  }
  // Columns scaled to unit size so that the normal equations stay well conditioned.
  std::array<double, kTerms> scale{};
  for (const ComputeSample& sample : usable) {
    const auto x = features(sample);
    for (size_t k = 0; k < kTerms; ++k) scale[k] = std::max(scale[k], x[k] / sample.seconds);
  }
  double best_error = std::numeric_limits<double>::infinity();
  std::array<double, kTerms> best{};
  for (unsigned mask = 1; mask < (1U << kTerms); ++mask) {
    std::vector<size_t> terms;
    for (size_t k = 0; k < kTerms; ++k) {
      if (((mask >> k) & 1U) != 0 && scale[k] > 0.0) terms.push_back(k);
    }
    if (terms.empty() || terms.size() > usable.size()) continue;
    // Weighted normal equations: rows x / t against 1.
    std::vector<std::vector<double>> normal(terms.size(), std::vector<double>(terms.size(), 0.0));
    std::vector<double> right(terms.size(), 0.0);
    for (const ComputeSample& sample : usable) {
      const auto x = features(sample);
      for (size_t i = 0; i < terms.size(); ++i) {
        const double xi = x[terms[i]] / sample.seconds / scale[terms[i]];
        right[i] += xi;
        for (size_t j = 0; j < terms.size(); ++j) {
          normal[i][j] += xi * x[terms[j]] / sample.seconds / scale[terms[j]];
        }
      }
    }
    std::vector<double> solution;
    if (!solve(normal, right, solution)) continue;
    std::array<double, kTerms> coefficients{};
    bool feasible = true;
    for (size_t i = 0; i < terms.size(); ++i) {
      coefficients[terms[i]] = solution[i] / scale[terms[i]];
      feasible = feasible && coefficients[terms[i]] >= 0.0;
    }
    if (!feasible) continue;
    double error = 0.0;
    for (const ComputeSample& sample : usable) {
      const auto x = features(sample);
      double predicted = 0.0;
      for (size_t k = 0; k < kTerms; ++k) predicted += coefficients[k] * x[k];
      const double relative = (predicted - sample.seconds) / sample.seconds;
      error += relative * relative;
    }
    if (error < best_error) {
      best_error = error;
      best = coefficients;
    }
  }
  if (!std::isfinite(best_error)) {
    return make_error(ErrorCode::kInvalidArgument, "compute fit: the samples fit no cost model");
  }
  ComputeFit fit;
  fit.cost.fixed_seconds = best[0];
  fit.cost.slice.per_token = best[1];
  fit.cost.slice.per_key = best[2];
  fit.cost.per_prefix_token = best[3];
  fit.cost.qkv_fraction = qkv_fraction;
  fit.relative_rms = std::sqrt(best_error / static_cast<double>(usable.size()));
  return fit;
}

Result<double> prediction_error(const ChainModel& model, std::span<const TtftSample> samples) {
  RUNAHEAD_RETURN_IF_ERROR(check_samples(samples));
  double sum = 0.0;
  for (const TtftSample& sample : samples) {
    RUNAHEAD_ASSIGN_OR_RETURN(const double predicted,
                              predict_ttft(model, sample.cuts, sample.chain));
    const double error = (predicted - sample.seconds) / sample.seconds;
    sum += error * error;
  }
  return std::sqrt(sum / static_cast<double>(samples.size()));
}

Result<double> refine_to_ttft(ChainModel& model, std::span<const TtftSample> samples,
                              std::span<const size_t> workers) {
  RUNAHEAD_RETURN_IF_ERROR(check_samples(samples));
  RUNAHEAD_RETURN_IF_ERROR(model.validate());
  // The terms, with the size a term at zero is first tried at: 1/1000 of a typical request.
  std::vector<double> ttft;
  double tokens = 0.0;
  for (const TtftSample& sample : samples) {
    ttft.push_back(sample.seconds);
    tokens = std::max(tokens, static_cast<double>(sample.cuts.back()));
  }
  std::nth_element(ttft.begin(), ttft.begin() + ttft.size() / 2, ttft.end());
  const double typical = ttft[ttft.size() / 2] * 1e-3;
  const double bytes = std::max(1.0, tokens * model.kv_bytes_per_token);
  LinkCost link = model.links.size() > 1 ? model.links[0][1] : LinkCost{};
  double per_byte = link.bytes_per_second > 0.0 ? 1.0 / link.bytes_per_second : 0.0;
  struct Term {
    double* value;
    double seed;
  };
  std::vector<Term> terms;
  for (size_t index : workers) {
    if (index >= model.workers.size()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "refine: no worker " + std::to_string(index) + " in the model");
    }
    WorkerCost& w = model.workers[index];
    terms.push_back({&w.fixed_seconds, typical});
    terms.push_back({&w.slice.per_token, typical / tokens});
    terms.push_back({&w.slice.per_key, typical / (tokens * tokens)});
  }
  terms.push_back({&model.overhead_seconds, typical});
  if (model.workers.size() > 1) {
    terms.push_back({&link.latency_seconds, typical});
    terms.push_back({&per_byte, typical / bytes});
  }
  auto error = [&]() -> Result<double> {
    link.bytes_per_second = per_byte > 0.0 ? 1.0 / per_byte : 0.0;
    for (auto& row : model.links) std::fill(row.begin(), row.end(), link);
    double sum = 0.0;
    for (const TtftSample& sample : samples) {
      RUNAHEAD_ASSIGN_OR_RETURN(const double predicted,
                                predict_ttft(model, sample.cuts, sample.chain));
      const double relative = (predicted - sample.seconds) / sample.seconds;
      sum += relative * relative;
    }
    return sum;
  };
  RUNAHEAD_ASSIGN_OR_RETURN(double best, error());
  for (double factor = 2.0; factor > 1.01; factor = std::sqrt(factor)) {
    for (int round = 0; round < 50; ++round) {
      bool improved = false;
      for (Term& term : terms) {
        const double current = *term.value;
        const std::vector<double> trials =
            current > 0.0 ? std::vector<double>{current * factor, current / factor, 0.0}
                          : std::vector<double>{term.seed};
        for (double trial : trials) {
          *term.value = trial;
          // A worker must keep some cost.
          bool valid = true;
          for (const WorkerCost& w : model.workers) {
            valid = valid && w.fixed_seconds + w.slice.per_token + w.slice.per_key > 0.0;
          }
          Result<double> trial_error = valid ? error() : Result<double>(best);
          if (!trial_error) return trial_error.status();
          if (valid && *trial_error < best * (1.0 - 1e-9)) {
            best = *trial_error;
            improved = true;
            break;
          }
          *term.value = current;
        }
      }
      if (!improved) break;
    }
  }
  RUNAHEAD_ASSIGN_OR_RETURN(best, error());  // leaves the links set
  return std::sqrt(best / static_cast<double>(samples.size()));
}

Result<LinkFit> fit_link_and_overhead(const ChainModel& model,
                                      std::span<const TtftSample> samples) {
  RUNAHEAD_RETURN_IF_ERROR(check_samples(samples));
  RUNAHEAD_RETURN_IF_ERROR(model.validate());
  // Latency 0 and 100 ns .. 100 ms; bandwidth unlimited and 1 MB/s .. 10 TB/s; steps of 2^(1/2).
  std::vector<double> latencies = {0.0};
  for (double value = 1e-7; value <= 0.1; value *= std::sqrt(2.0)) latencies.push_back(value);
  std::vector<double> bandwidths = {0.0};
  for (double value = 1e6; value <= 1e13; value *= std::sqrt(2.0)) bandwidths.push_back(value);

  struct Candidate {
    LinkCost link;
    double overhead = 0.0;
    double error = 0.0;
  };
  std::vector<Candidate> candidates;
  ChainModel trial = model;
  trial.overhead_seconds = 0.0;
  std::vector<double> predicted(samples.size());
  for (double latency : latencies) {
    for (double bandwidth : bandwidths) {
      const LinkCost link{latency, bandwidth};
      for (auto& row : trial.links) std::fill(row.begin(), row.end(), link);
      for (size_t i = 0; i < samples.size(); ++i) {
        RUNAHEAD_ASSIGN_OR_RETURN(predicted[i],
                                  predict_ttft(trial, samples[i].cuts, samples[i].chain));
      }
      // The overhead minimizing the relative error, in closed form, kept >= 0.
      double numerator = 0.0;
      double denominator = 0.0;
      for (size_t i = 0; i < samples.size(); ++i) {
        const double weight = 1.0 / (samples[i].seconds * samples[i].seconds);
        numerator += (samples[i].seconds - predicted[i]) * weight;
        denominator += weight;
      }
      const double overhead = std::max(0.0, numerator / denominator);
      candidates.push_back({link, overhead, relative_sse(predicted, samples, overhead)});
    }
  }
  double best_error = std::numeric_limits<double>::infinity();
  for (const Candidate& c : candidates) best_error = std::min(best_error, c.error);
  // The cheapest link among those that fit about as well: a 1 MiB transfer's time.
  const Candidate* chosen = nullptr;
  double cheapest = std::numeric_limits<double>::infinity();
  for (const Candidate& c : candidates) {
    if (c.error > best_error * 1.01 + 1e-18) continue;
    const double cost = c.link.seconds(1 << 20);
    if (cost < cheapest) {
      cheapest = cost;
      chosen = &c;
    }
  }
  LinkFit fit;
  fit.link = chosen->link;
  fit.overhead_seconds = chosen->overhead;
  fit.relative_rms = std::sqrt(chosen->error / static_cast<double>(samples.size()));
  return fit;
}

}  // namespace runahead
