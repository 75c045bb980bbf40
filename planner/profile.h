// A calibration profile of a cluster (written by `runahead calibrate`, read by the
// coordinator): the model it was measured with, each worker's fitted compute cost, the links
// between workers, a constant per-request overhead, and optionally the measured best
// partitions per context length (KVR-S), interpolated for other lengths (KVR-P).
//
// JSON, version 1:
//   {"format": "runahead-profile", "version": 1,
//    "model": {"hash": "...", "layers": 32, "kv_bytes_per_token": 16384, "qkv_fraction": 0.25,
//              "name": "...", "hidden": 4096, "kv_dim": 4096, "ffn_hidden": 11008},
//    "overhead_seconds": 0.0008,
//    "workers": [{"name": "w0", "backend": "cuda:0 ...", "per_token_seconds": ...,
//                 "per_key_seconds": ..., "fixed_seconds": ..., "per_prefix_token_seconds": ...,
//                 "qkv_fraction": ..., "fit_error": 0.01}, ...],
//    "links": {"default": {"latency_seconds": ..., "bytes_per_second": ...},
//              "pairs": [{"from": "w0", "to": "w1", "latency_seconds": ...,
//                         "bytes_per_second": ...}]},
//    "searched": [{"tokens": 4096, "workers": 4, "fractions": [0.31, 0.56, 0.79],
//                  "measured_ttft_ms": 81.2, "model_ttft_ms": 83.0}]}
// "model" fields after qkv_fraction, a worker's fixed_seconds, per_prefix_token_seconds,
// qkv_fraction and fit_error, "links" and "searched" are optional; a bandwidth of 0 means no
// limit. The cost terms are those of planner/chain_model.h's WorkerCost.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "planner/chain_model.h"
#include "planner/partition.h"

namespace runahead {

struct ProfileModel {
  std::string hash;  // the workers' model hash; a profile of another model is not used
  int layers = 0;
  double kv_bytes_per_token = 0.0;  // K and V of one token in one layer, as sent
  double qkv_fraction = 0.25;       // default share of the per-token cost before the prefix
  // Informative only.
  std::string name;
  int hidden = 0;
  int kv_dim = 0;
  int ffn_hidden = 0;
};

struct ProfileWorker {
  std::string name;     // as the worker joined (runahead worker --name)
  std::string backend;  // its backend and device, as it reported them
  WorkerCost cost;
  double fit_error = 0.0;  // relative RMS error of the fit on the calibration runs
};

struct ProfileLink {
  std::string from;  // worker names
  std::string to;
  LinkCost cost;
};

// KVR-S: the best partition a measured search found for one context length and worker count.
struct SearchedPartition {
  int64_t tokens = 0;
  std::vector<double> fractions;  // interior cuts / tokens, rising in (0, 1); workers - 1 values
  double measured_ttft_ms = 0.0;
  double model_ttft_ms = 0.0;  // the model's own partition, measured, for comparison

  size_t workers() const { return fractions.size() + 1; }
};

// A worker of a chain to be planned, as the coordinator knows it.
struct ChainWorker {
  std::string name;
  std::string backend;
  SliceCost measured;  // from its start-up probe; zero when not measured
};

struct Profile {
  ProfileModel model;
  double overhead_seconds = 0.0;
  std::vector<ProfileWorker> workers;
  LinkCost default_link;
  std::vector<ProfileLink> links;
  std::vector<SearchedPartition> searched;

  // Reads and validates; errors name the file and the field.
  [[nodiscard]] static Result<Profile> load(const std::string& path);
  [[nodiscard]] static Result<Profile> parse(const std::string& json, const std::string& source);
  [[nodiscard]] Status save(const std::string& path) const;
  std::string to_json() const;
  // Names the first field out of range (`source` prefixes the message).
  [[nodiscard]] Status validate(const std::string& source = "profile") const;

  // The chain model of these workers, in this order. Each takes the profile entry of its name,
  // else the first of its backend, else its own start-up measurement (with the profile's
  // qkv_fraction), else the profile's first worker; links by the pair's names, else default.
  ChainModel chain_model(std::span<const ChainWorker> chain) const;

  // KVR-P: the searched partition for `tokens` over `workers` workers, the cut fractions
  // interpolated linearly between the nearest searched lengths (clamped outside them);
  // nullopt when nothing was searched for that many workers or tokens < workers.
  std::optional<Partition> searched_cuts(int64_t tokens, size_t workers) const;
};

}  // namespace runahead
