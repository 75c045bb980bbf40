// The serving metrics of the HTTP layer in the Prometheus text format (version 0.0.4): latency
// histograms and counters kept here, gauges read from the coordinator's status at scrape time.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "runahead/coordinator.h"

namespace runahead::http {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // The _bucket, _sum and _count lines of `name`.
  void render(std::string& out, std::string_view name) const;

 private:
  std::vector<double> upper_bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative
  uint64_t count_ = 0;
  double sum_ = 0.0;
};

// How a request ended, the label of runahead_http_requests_total.
enum class Outcome { kSuccess, kCancelled, kInvalid, kUnauthorized, kRejected, kFailed };

class ServingMetrics {
 public:
  ServingMetrics();

  void observe_ttft(double seconds);
  void observe_inter_token(double seconds);
  void count(Outcome outcome);
  void add_tokens(uint64_t prompt, uint64_t generated);
  // Per-worker compute time and K/V bytes sent, from a finished request's timeline.
  void add_timeline(const RequestResult& result);
  void request_started();
  void request_ended();

  // Everything, with the coordinator's queue and workers from `status` (null: unavailable).
  std::string render(const ClusterStatus* status) const;

 private:
  mutable std::mutex mutex_;
  Histogram ttft_;
  Histogram inter_token_;
  std::map<Outcome, uint64_t> outcomes_;
  uint64_t prompt_tokens_ = 0;
  uint64_t generated_tokens_ = 0;
  int64_t http_in_flight_ = 0;
  std::map<uint64_t, double> worker_busy_seconds_;
  std::map<uint64_t, uint64_t> worker_kv_bytes_sent_;
};

}  // namespace runahead::http
