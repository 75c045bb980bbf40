#include "http/metrics.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace runahead::http {

namespace {

std::string number(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  std::ostringstream out;
  out.precision(17);
  out << value;
  return out.str();
}

// A label value with \, " and newlines escaped as the text format asks.
std::string label_value(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

const char* outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::kSuccess:
      return "success";
    case Outcome::kCancelled:
      return "cancelled";
    case Outcome::kInvalid:
      return "invalid";
    case Outcome::kUnauthorized:
      return "unauthorized";
    case Outcome::kRejected:
      return "rejected";
    case Outcome::kFailed:
      return "failed";
  }
  return "unknown";
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), counts_(upper_bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin());
  ++counts_[bucket];
  ++count_;
  sum_ += value;
}

void Histogram::render(std::string& out, std::string_view name) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) {
    cumulative += counts_[i];
    const double bound =
        i < upper_bounds_.size() ? upper_bounds_[i] : std::numeric_limits<double>::infinity();
    out.append(name).append("_bucket{le=\"").append(number(bound)).append("\"} ");
    out.append(std::to_string(cumulative)).append("\n");
  }
  out.append(name).append("_sum ").append(number(sum_)).append("\n");
  out.append(name).append("_count ").append(std::to_string(count_)).append("\n");
}

ServingMetrics::ServingMetrics()
    : ttft_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      inter_token_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}) {}

void ServingMetrics::observe_ttft(double seconds) {
  std::lock_guard lock(mutex_);
  ttft_.observe(seconds);
}

void ServingMetrics::observe_inter_token(double seconds) {
  std::lock_guard lock(mutex_);
  inter_token_.observe(seconds);
}

void ServingMetrics::count(Outcome outcome) {
  std::lock_guard lock(mutex_);
  ++outcomes_[outcome];
}

void ServingMetrics::add_tokens(uint64_t prompt, uint64_t generated) {
  std::lock_guard lock(mutex_);
  prompt_tokens_ += prompt;
  generated_tokens_ += generated;
}

void ServingMetrics::add_timeline(const RequestResult& result) {
  std::lock_guard lock(mutex_);
  for (const LayerTimeline& layer : result.timeline) {
    worker_busy_seconds_[layer.worker_id] += layer.compute_ms / 1e3;
    worker_kv_bytes_sent_[layer.worker_id] += layer.bytes_out;
  }
}

void ServingMetrics::request_started() {
  std::lock_guard lock(mutex_);
  ++http_in_flight_;
}

void ServingMetrics::request_ended() {
  std::lock_guard lock(mutex_);
  --http_in_flight_;
}

std::string ServingMetrics::render(const ClusterStatus* status) const {
  std::lock_guard lock(mutex_);
  std::string out;
  header(out, "runahead_time_to_first_token_seconds", "histogram",
         "From a request's arrival at the HTTP server to its first generated token.");
  ttft_.render(out, "runahead_time_to_first_token_seconds");
  header(out, "runahead_inter_token_latency_seconds", "histogram",
         "Time between two consecutive generated tokens of one request.");
  inter_token_.render(out, "runahead_inter_token_latency_seconds");
  header(out, "runahead_http_requests_total", "counter", "Completion requests by how they ended.");
  for (Outcome outcome : {Outcome::kSuccess, Outcome::kCancelled, Outcome::kInvalid,
                          Outcome::kUnauthorized, Outcome::kRejected, Outcome::kFailed}) {
    auto it = outcomes_.find(outcome);
    out.append("runahead_http_requests_total{outcome=\"")
        .append(outcome_name(outcome))
        .append("\"} ")
        .append(std::to_string(it == outcomes_.end() ? 0 : it->second))
        .append("\n");
  }
  header(out, "runahead_prompt_tokens_total", "counter", "Prompt tokens of accepted requests.");
  out.append("runahead_prompt_tokens_total ").append(std::to_string(prompt_tokens_)).append("\n");
  header(out, "runahead_generated_tokens_total", "counter", "Tokens generated for requests.");
  out.append("runahead_generated_tokens_total ")
      .append(std::to_string(generated_tokens_))
      .append("\n");
  header(out, "runahead_http_requests_in_flight", "gauge",
         "Completion requests the HTTP server is serving now.");
  out.append("runahead_http_requests_in_flight ")
      .append(std::to_string(http_in_flight_))
      .append("\n");
  header(out, "runahead_worker_busy_seconds_total", "counter",
         "Compute time of each worker on finished requests (from their timelines).");
  for (const auto& [worker, seconds] : worker_busy_seconds_) {
    out.append("runahead_worker_busy_seconds_total{worker=\"")
        .append(std::to_string(worker))
        .append("\"} ")
        .append(number(seconds))
        .append("\n");
  }
  header(out, "runahead_kv_bytes_sent_total", "counter",
         "K/V bytes each worker sent to its successors on finished requests.");
  for (const auto& [worker, bytes] : worker_kv_bytes_sent_) {
    out.append("runahead_kv_bytes_sent_total{worker=\"")
        .append(std::to_string(worker))
        .append("\"} ")
        .append(std::to_string(bytes))
        .append("\n");
  }
  if (status == nullptr) return out;
  header(out, "runahead_queue_depth", "gauge", "Requests waiting at the coordinator.");
  out.append("runahead_queue_depth ").append(std::to_string(status->queued_requests)).append("\n");
  header(out, "runahead_queue_capacity", "gauge", "Requests that may wait at the coordinator.");
  out.append("runahead_queue_capacity ")
      .append(std::to_string(status->queue_capacity))
      .append("\n");
  header(out, "runahead_requests_in_flight", "gauge", "Requests on the workers now.");
  out.append("runahead_requests_in_flight ")
      .append(std::to_string(status->active_requests))
      .append("\n");
  header(out, "runahead_workers", "gauge", "Workers registered with the coordinator.");
  out.append("runahead_workers ").append(std::to_string(status->workers.size())).append("\n");
  header(out, "runahead_worker_heartbeat_age_seconds", "gauge",
         "Time since each worker's last heartbeat.");
  for (const WorkerState& worker : status->workers) {
    out.append("runahead_worker_heartbeat_age_seconds{worker=\"")
        .append(std::to_string(worker.id))
        .append("\",name=\"")
        .append(label_value(worker.name))
        .append("\"} ")
        .append(number(static_cast<double>(worker.last_heartbeat_age_ms) / 1e3))
        .append("\n");
  }
  header(out, "runahead_worker_healthy", "gauge", "1 while a worker is healthy.");
  for (const WorkerState& worker : status->workers) {
    out.append("runahead_worker_healthy{worker=\"")
        .append(std::to_string(worker.id))
        .append("\",name=\"")
        .append(label_value(worker.name))
        .append("\"} ")
        .append(worker.healthy ? "1" : "0")
        .append("\n");
  }
  header(out, "runahead_worker_active_requests", "gauge", "Requests each worker is running.");
  for (const WorkerState& worker : status->workers) {
    out.append("runahead_worker_active_requests{worker=\"")
        .append(std::to_string(worker.id))
        .append("\",name=\"")
        .append(label_value(worker.name))
        .append("\"} ")
        .append(std::to_string(worker.active_requests))
        .append("\n");
  }
  return out;
}

}  // namespace runahead::http
