#include "planner/profile.h"

#include "planner/claimed_costs.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace runahead {
namespace {

using nlohmann::json;

constexpr const char* kFormat = "runahead-profile";
constexpr int kVersion = 1;

// Reads typed fields of a JSON document; every error names the source and the field's path.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  Error error(const std::string& path, const std::string& what) const {
    return make_error(ErrorCode::kInvalidArgument, source_ + ": field '" + path + "': " + what);
  }

  // nullptr when absent and optional.
  Result<const json*> member(const json& object, const std::string& path, const char* key,
                             bool required) const {
    const std::string full = path.empty() ? key : path + "." + key;
    if (!object.is_object())
      return error(path.empty() ? "(top level)" : path, "expected an object");
    auto it = object.find(key);
    if (it == object.end()) {
      if (required) return error(full, "missing");
      return static_cast<const json*>(nullptr);
    }
    return &*it;
  }

  Result<double> number(const json& object, const std::string& path, const char* key,
                        std::optional<double> fallback = std::nullopt) const {
    RUNAHEAD_ASSIGN_OR_RETURN(const json* value, member(object, path, key, !fallback));
    if (value == nullptr) return *fallback;
    const std::string full = path.empty() ? key : path + "." + key;
    if (!value->is_number()) return error(full, "expected a number");
    const double number = value->get<double>();
    if (!std::isfinite(number)) return error(full, "expected a finite number");
    return number;
  }

  Result<double> non_negative(const json& object, const std::string& path, const char* key,
                              std::optional<double> fallback = std::nullopt) const {
    RUNAHEAD_ASSIGN_OR_RETURN(const double value, number(object, path, key, fallback));
    if (value < 0.0) return error(path.empty() ? key : path + "." + key, "must be >= 0");
    return value;
  }

  Result<int64_t> integer(const json& object, const std::string& path, const char* key,
                          std::optional<int64_t> fallback = std::nullopt) const {
    RUNAHEAD_ASSIGN_OR_RETURN(const json* value, member(object, path, key, !fallback));
    if (value == nullptr) return *fallback;
    const std::string full = path.empty() ? key : path + "." + key;
    if (!value->is_number_integer()) return error(full, "expected an integer");
    return value->get<int64_t>();
  }

  Result<std::string> text(const json& object, const std::string& path, const char* key,
                           std::optional<std::string> fallback = std::nullopt) const {
    RUNAHEAD_ASSIGN_OR_RETURN(const json* value, member(object, path, key, !fallback));
    if (value == nullptr) return *fallback;
    if (!value->is_string())
      return error(path.empty() ? key : path + "." + key, "expected a string");
    return value->get<std::string>();
  }

 private:
  std::string source_;
};

Result<LinkCost> read_link(const Reader& reader, const json& object, const std::string& path) {
  LinkCost link;
  RUNAHEAD_ASSIGN_OR_RETURN(link.latency_seconds,
                            reader.non_negative(object, path, "latency_seconds"));
  RUNAHEAD_ASSIGN_OR_RETURN(link.bytes_per_second,
                            reader.non_negative(object, path, "bytes_per_second"));
  return link;
}

json write_link(const LinkCost& link) {
  return json{{"latency_seconds", link.latency_seconds},
              {"bytes_per_second", link.bytes_per_second}};
}

Result<Profile> read_profile(const json& document, const Reader& reader) {
  Profile profile;
  RUNAHEAD_ASSIGN_OR_RETURN(const std::string format, reader.text(document, "", "format"));
  if (format != kFormat) {
    return reader.error("format", "is '" + format + "', expected '" + kFormat + "'");
  }
  RUNAHEAD_ASSIGN_OR_RETURN(const int64_t version, reader.integer(document, "", "version"));
  if (version != kVersion) {
    return reader.error("version", "is " + std::to_string(version) + ", this build reads " +
                                       std::to_string(kVersion));
  }

  RUNAHEAD_ASSIGN_OR_RETURN(const json* model, reader.member(document, "", "model", true));
  ProfileModel& m = profile.model;
  RUNAHEAD_ASSIGN_OR_RETURN(m.hash, reader.text(*model, "model", "hash"));
  RUNAHEAD_ASSIGN_OR_RETURN(const int64_t layers, reader.integer(*model, "model", "layers"));
  if (layers < 1 || layers > 100000) return reader.error("model.layers", "must be in [1, 100000]");
  m.layers = static_cast<int>(layers);
  RUNAHEAD_ASSIGN_OR_RETURN(m.kv_bytes_per_token,
                            reader.non_negative(*model, "model", "kv_bytes_per_token"));
  RUNAHEAD_ASSIGN_OR_RETURN(m.qkv_fraction,
                            reader.non_negative(*model, "model", "qkv_fraction", 0.25));
  RUNAHEAD_ASSIGN_OR_RETURN(m.name, reader.text(*model, "model", "name", ""));
  RUNAHEAD_ASSIGN_OR_RETURN(const int64_t hidden, reader.integer(*model, "model", "hidden", 0));
  RUNAHEAD_ASSIGN_OR_RETURN(const int64_t kv_dim, reader.integer(*model, "model", "kv_dim", 0));
  RUNAHEAD_ASSIGN_OR_RETURN(const int64_t ffn, reader.integer(*model, "model", "ffn_hidden", 0));
  m.hidden = static_cast<int>(std::clamp<int64_t>(hidden, 0, 1 << 30));
  m.kv_dim = static_cast<int>(std::clamp<int64_t>(kv_dim, 0, 1 << 30));
  m.ffn_hidden = static_cast<int>(std::clamp<int64_t>(ffn, 0, 1 << 30));

  RUNAHEAD_ASSIGN_OR_RETURN(profile.overhead_seconds,
                            reader.non_negative(document, "", "overhead_seconds", 0.0));

  RUNAHEAD_ASSIGN_OR_RETURN(const json* workers, reader.member(document, "", "workers", true));
  if (!workers->is_array()) return reader.error("workers", "expected an array");
  for (size_t i = 0; i < workers->size(); ++i) {
    const json& entry = (*workers)[i];
    const std::string path = "workers[" + std::to_string(i) + "]";
    ProfileWorker worker;
    RUNAHEAD_ASSIGN_OR_RETURN(worker.name, reader.text(entry, path, "name"));
    RUNAHEAD_ASSIGN_OR_RETURN(worker.backend, reader.text(entry, path, "backend", ""));
    RUNAHEAD_ASSIGN_OR_RETURN(worker.cost.slice.per_token,
                              reader.non_negative(entry, path, "per_token_seconds"));
    RUNAHEAD_ASSIGN_OR_RETURN(worker.cost.slice.per_key,
                              reader.non_negative(entry, path, "per_key_seconds"));
    RUNAHEAD_ASSIGN_OR_RETURN(worker.cost.fixed_seconds,
                              reader.non_negative(entry, path, "fixed_seconds", 0.0));
    RUNAHEAD_ASSIGN_OR_RETURN(worker.cost.per_prefix_token,
                              reader.non_negative(entry, path, "per_prefix_token_seconds", 0.0));
    RUNAHEAD_ASSIGN_OR_RETURN(worker.cost.qkv_fraction,
                              reader.non_negative(entry, path, "qkv_fraction", m.qkv_fraction));
    RUNAHEAD_ASSIGN_OR_RETURN(worker.fit_error, reader.non_negative(entry, path, "fit_error", 0.0));
    profile.workers.push_back(std::move(worker));
  }

  RUNAHEAD_ASSIGN_OR_RETURN(const json* links, reader.member(document, "", "links", false));
  if (links != nullptr) {
    RUNAHEAD_ASSIGN_OR_RETURN(const json* fallback,
                              reader.member(*links, "links", "default", false));
    if (fallback != nullptr) {
      RUNAHEAD_ASSIGN_OR_RETURN(profile.default_link,
                                read_link(reader, *fallback, "links.default"));
    }
    RUNAHEAD_ASSIGN_OR_RETURN(const json* pairs, reader.member(*links, "links", "pairs", false));
    if (pairs != nullptr) {
      if (!pairs->is_array()) return reader.error("links.pairs", "expected an array");
      for (size_t i = 0; i < pairs->size(); ++i) {
        const std::string path = "links.pairs[" + std::to_string(i) + "]";
        ProfileLink link;
        RUNAHEAD_ASSIGN_OR_RETURN(link.from, reader.text((*pairs)[i], path, "from"));
        RUNAHEAD_ASSIGN_OR_RETURN(link.to, reader.text((*pairs)[i], path, "to"));
        RUNAHEAD_ASSIGN_OR_RETURN(link.cost, read_link(reader, (*pairs)[i], path));
        profile.links.push_back(std::move(link));
      }
    }
  }

  RUNAHEAD_ASSIGN_OR_RETURN(const json* searched, reader.member(document, "", "searched", false));
  if (searched != nullptr) {
    if (!searched->is_array()) return reader.error("searched", "expected an array");
    for (size_t i = 0; i < searched->size(); ++i) {
      const json& entry = (*searched)[i];
      const std::string path = "searched[" + std::to_string(i) + "]";
      SearchedPartition row;
      RUNAHEAD_ASSIGN_OR_RETURN(row.tokens, reader.integer(entry, path, "tokens"));
      RUNAHEAD_ASSIGN_OR_RETURN(const int64_t count, reader.integer(entry, path, "workers"));
      RUNAHEAD_ASSIGN_OR_RETURN(const json* fractions,
                                reader.member(entry, path, "fractions", true));
      if (!fractions->is_array()) return reader.error(path + ".fractions", "expected an array");
      for (size_t j = 0; j < fractions->size(); ++j) {
        const json& value = (*fractions)[j];
        if (!value.is_number() || !std::isfinite(value.get<double>())) {
          return reader.error(path + ".fractions[" + std::to_string(j) + "]",
                              "expected a finite number");
        }
        row.fractions.push_back(value.get<double>());
      }
      if (count != static_cast<int64_t>(row.workers())) {
        return reader.error(path + ".fractions", "has " + std::to_string(row.fractions.size()) +
                                                     " values for " + std::to_string(count) +
                                                     " workers (expected workers - 1)");
      }
      RUNAHEAD_ASSIGN_OR_RETURN(row.measured_ttft_ms,
                                reader.non_negative(entry, path, "measured_ttft_ms", 0.0));
      RUNAHEAD_ASSIGN_OR_RETURN(row.model_ttft_ms,
                                reader.non_negative(entry, path, "model_ttft_ms", 0.0));
      profile.searched.push_back(std::move(row));
    }
  }
  return profile;
}

bool finite_non_negative(double value) {
  return std::isfinite(value) && value >= 0.0;
}

}  // namespace

Status Profile::validate(const std::string& source) const {
  auto invalid = [&](const std::string& path, const std::string& what) {
    return make_error(ErrorCode::kInvalidArgument, source + ": field '" + path + "': " + what);
  };
  if (model.hash.empty()) return invalid("model.hash", "must not be empty");
  if (model.layers < 1) return invalid("model.layers", "must be at least 1");
  if (!finite_non_negative(model.kv_bytes_per_token)) {
    return invalid("model.kv_bytes_per_token", "must be a finite number >= 0");
  }
  if (!(model.qkv_fraction >= 0.0 && model.qkv_fraction <= 1.0)) {
    return invalid("model.qkv_fraction", "must be in [0, 1]");
  }
  if (!finite_non_negative(overhead_seconds)) {
    return invalid("overhead_seconds", "must be a finite number >= 0");
  }
  if (workers.empty()) return invalid("workers", "must name at least one worker");
  std::set<std::string> names;
  for (size_t i = 0; i < workers.size(); ++i) {
    const ProfileWorker& w = workers[i];
    const std::string path = "workers[" + std::to_string(i) + "]";
    if (w.name.empty()) return invalid(path + ".name", "must not be empty");
    if (!names.insert(w.name).second) {
      return invalid(path + ".name", "'" + w.name + "' appears twice");
    }
    if (!finite_non_negative(w.cost.slice.per_token) ||
        !finite_non_negative(w.cost.slice.per_key) || !finite_non_negative(w.cost.fixed_seconds) ||
        !finite_non_negative(w.cost.per_prefix_token)) {
      return invalid(path, "cost terms must be finite numbers >= 0");
    }
    if (w.cost.slice.per_token + w.cost.slice.per_key + w.cost.fixed_seconds <= 0.0) {
      return invalid(path, "per_token_seconds, per_key_seconds and fixed_seconds are all zero");
    }
    if (!(w.cost.qkv_fraction >= 0.0 && w.cost.qkv_fraction <= 1.0)) {
      return invalid(path + ".qkv_fraction", "must be in [0, 1]");
    }
  }
  if (!finite_non_negative(default_link.latency_seconds) ||
      !finite_non_negative(default_link.bytes_per_second)) {
    return invalid("links.default", "latency and bandwidth must be finite numbers >= 0");
  }
  for (size_t i = 0; i < links.size(); ++i) {
    const std::string path = "links.pairs[" + std::to_string(i) + "]";
    if (links[i].from.empty() || links[i].to.empty() || links[i].from == links[i].to) {
      return invalid(path, "needs two different worker names in 'from' and 'to'");
    }
    if (!finite_non_negative(links[i].cost.latency_seconds) ||
        !finite_non_negative(links[i].cost.bytes_per_second)) {
      return invalid(path, "latency and bandwidth must be finite numbers >= 0");
    }
  }
  std::set<std::pair<size_t, int64_t>> lengths;
  for (size_t i = 0; i < searched.size(); ++i) {
    const SearchedPartition& row = searched[i];
    const std::string path = "searched[" + std::to_string(i) + "]";
    if (row.tokens < static_cast<int64_t>(row.workers())) {
      return invalid(path + ".tokens", "must be at least the number of workers");
    }
    if (!lengths.insert({row.workers(), row.tokens}).second) {
      return invalid(path + ".tokens", std::to_string(row.tokens) + " tokens over " +
                                           std::to_string(row.workers()) +
                                           " workers appears twice");
    }
    double previous = 0.0;
    for (size_t j = 0; j < row.fractions.size(); ++j) {
      if (!(row.fractions[j] > previous && row.fractions[j] < 1.0)) {
        return invalid(path + ".fractions[" + std::to_string(j) + "]",
                       "fractions must rise strictly within (0, 1)");
      }
      previous = row.fractions[j];
    }
    if (!finite_non_negative(row.measured_ttft_ms) || !finite_non_negative(row.model_ttft_ms)) {
      return invalid(path, "times must be finite numbers >= 0");
    }
  }
  return Status::ok();
}

Result<Profile> Profile::parse(const std::string& text, const std::string& source) {
  json document;
  try {
    document = json::parse(text);
  } catch (const json::exception& error) {
    // Not only parse_error: a number beyond double's range is an out_of_range error.
    return make_error(ErrorCode::kCorruptData, source + ": not valid JSON: " + error.what());
  }
  Reader reader(source);
  RUNAHEAD_ASSIGN_OR_RETURN(Profile profile, read_profile(document, reader));
  RUNAHEAD_RETURN_IF_ERROR(profile.validate(source));
  return profile;
}

Result<Profile> Profile::load(const std::string& path) {
  std::ifstream file(path);
  if (!file) return make_error(ErrorCode::kNotFound, path + ": cannot open the profile");
  std::stringstream text;
  text << file.rdbuf();
  return parse(text.str(), path);
}

std::string Profile::to_json() const {
  json document;
  document["format"] = kFormat;
  document["version"] = kVersion;
  json m{{"hash", model.hash},
         {"layers", model.layers},
         {"kv_bytes_per_token", model.kv_bytes_per_token},
         {"qkv_fraction", model.qkv_fraction}};
  if (!model.name.empty()) m["name"] = model.name;
  if (model.hidden > 0) m["hidden"] = model.hidden;
  if (model.kv_dim > 0) m["kv_dim"] = model.kv_dim;
  if (model.ffn_hidden > 0) m["ffn_hidden"] = model.ffn_hidden;
  document["model"] = m;
  document["overhead_seconds"] = overhead_seconds;
  json list = json::array();
  for (const ProfileWorker& w : workers) {
    list.push_back(json{{"name", w.name},
                        {"backend", w.backend},
                        {"per_token_seconds", w.cost.slice.per_token},
                        {"per_key_seconds", w.cost.slice.per_key},
                        {"fixed_seconds", w.cost.fixed_seconds},
                        {"per_prefix_token_seconds", w.cost.per_prefix_token},
                        {"qkv_fraction", w.cost.qkv_fraction},
                        {"fit_error", w.fit_error}});
  }
  document["workers"] = list;
  json pairs = json::array();
  for (const ProfileLink& link : links) {
    json entry = write_link(link.cost);
    entry["from"] = link.from;
    entry["to"] = link.to;
    pairs.push_back(entry);
  }
  document["links"] = json{{"default", write_link(default_link)}, {"pairs", pairs}};
  json rows = json::array();
  for (const SearchedPartition& row : searched) {
    rows.push_back(json{{"tokens", row.tokens},
                        {"workers", row.workers()},
                        {"fractions", row.fractions},
                        {"measured_ttft_ms", row.measured_ttft_ms},
                        {"model_ttft_ms", row.model_ttft_ms}});
  }
  document["searched"] = rows;
  return document.dump(2) + "\n";
}

Status Profile::save(const std::string& path) const {
  RUNAHEAD_RETURN_IF_ERROR(validate(path));
  std::ofstream file(path, std::ios::trunc);
  if (!file) return make_error(ErrorCode::kNotFound, path + ": cannot write the profile");
  file << to_json();
  file.close();
  if (!file) return make_error(ErrorCode::kInternal, path + ": writing the profile failed");
  return Status::ok();
}

ChainModel Profile::chain_model(std::span<const ChainWorker> chain) const {
  std::vector<WorkerCost> costs;
  for (const ChainWorker& worker : chain) {
    auto by = [&](auto matches) { return std::find_if(workers.begin(), workers.end(), matches); };
    auto entry = by([&](const ProfileWorker& w) { return w.name == worker.name; });
    if (entry == workers.end() && !worker.backend.empty()) {
      entry = by([&](const ProfileWorker& w) { return w.backend == worker.backend; });
    }
    if (entry != workers.end()) {
      costs.push_back(entry->cost);
    } else if (worker.measured.per_token > 0.0) {
      // A worker the profile does not know: its claim, within reach of what was measured.
      std::vector<SliceCost> measured;
      for (const ProfileWorker& known : workers) measured.push_back(known.cost.slice);
      costs.push_back(WorkerCost{.slice = trusted_cost(worker.measured, measured),
                                 .fixed_seconds = 0.0,
                                 .qkv_fraction = model.qkv_fraction});
    } else {
      costs.push_back(workers.front().cost);
    }
  }
  ChainModel result = ChainModel::uniform(std::move(costs), default_link, model.layers,
                                          model.kv_bytes_per_token, overhead_seconds);
  for (size_t i = 0; i < chain.size(); ++i) {
    for (size_t j = i + 1; j < chain.size(); ++j) {
      for (const ProfileLink& link : links) {
        if (link.from == chain[i].name && link.to == chain[j].name) {
          result.links[i][j] = link.cost;
        }
      }
    }
  }
  return result;
}

std::optional<Partition> Profile::searched_cuts(int64_t tokens, size_t count) const {
  if (count == 0 || tokens < static_cast<int64_t>(count)) return std::nullopt;
  std::vector<const SearchedPartition*> rows;
  for (const SearchedPartition& row : searched) {
    if (row.workers() == count) rows.push_back(&row);
  }
  if (rows.empty()) return std::nullopt;
  std::sort(rows.begin(), rows.end(), [](auto* x, auto* y) { return x->tokens < y->tokens; });
  std::vector<double> fractions;
  if (tokens <= rows.front()->tokens) {
    fractions = rows.front()->fractions;
  } else if (tokens >= rows.back()->tokens) {
    fractions = rows.back()->fractions;
  } else {
    size_t upper = 1;
    while (rows[upper]->tokens < tokens) ++upper;
    const SearchedPartition& lo = *rows[upper - 1];
    const SearchedPartition& hi = *rows[upper];
    const double weight =
        static_cast<double>(tokens - lo.tokens) / static_cast<double>(hi.tokens - lo.tokens);
    for (size_t j = 0; j < lo.fractions.size(); ++j) {
      fractions.push_back((1.0 - weight) * lo.fractions[j] + weight * hi.fractions[j]);
    }
  }
  // Rounded to tokens, then nudged so that every slice keeps at least one token.
  Partition cuts(count + 1, 0);
  cuts[count] = tokens;
  for (size_t j = 0; j + 1 < count; ++j) {
    const auto rounded =
        static_cast<int64_t>(std::llround(fractions[j] * static_cast<double>(tokens)));
    const int64_t highest = tokens - static_cast<int64_t>(count - 1 - j);
    cuts[j + 1] = std::clamp(rounded, cuts[j] + 1, highest);
  }
  return cuts;
}

}  // namespace runahead
