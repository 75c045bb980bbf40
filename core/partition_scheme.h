// How a request's prompt is cut into slices, one per worker (docs/load-balancing.md): the one
// scheme type of the coordinator, its planner and the control protocol. The public API has its
// own (runahead/request.h), converted at the API edge; the wire has an enum of the same cases.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace runahead {

enum class PartitionScheme : uint8_t {
  kBalanced,  // from the workers' cost models, so that all finish together
  kEven,      // equal slices
  kExplicit,  // the cut points the request gives
  kSearched,  // the profile's measured partitions (KVR-S), interpolated for the length (KVR-P);
              // balanced where the profile has none
};

// "balanced", "even", "explicit", "searched".
const char* partition_scheme_name(PartitionScheme scheme);
// The scheme of a name as partition_scheme_name() writes it; nullopt for anything else.
std::optional<PartitionScheme> parse_partition_scheme(std::string_view name);

// How one request asks its prompt to be cut; all unset leaves it to the coordinator.
struct PartitionChoice {
  std::optional<PartitionScheme> scheme;  // nullopt: the coordinator's configured scheme
  uint32_t workers = 0;                   // workers to use (0: the coordinator decides)
  std::vector<uint64_t> cuts;             // kExplicit: 0 = c0 < c1 < ... < cP = prompt length

  bool operator==(const PartitionChoice&) const = default;
};

}  // namespace runahead
