#include "core/partition_scheme.h"

namespace runahead {

const char* partition_scheme_name(PartitionScheme scheme) {
  switch (scheme) {
    case PartitionScheme::kBalanced:
      return "balanced";
    case PartitionScheme::kEven:
      return "even";
    case PartitionScheme::kExplicit:
      return "explicit";
    case PartitionScheme::kSearched:
      return "searched";
  }
  return "unknown";
}

std::optional<PartitionScheme> parse_partition_scheme(std::string_view name) {
  for (PartitionScheme scheme : {PartitionScheme::kBalanced, PartitionScheme::kEven,
                                 PartitionScheme::kExplicit, PartitionScheme::kSearched}) {
    if (name == partition_scheme_name(scheme)) return scheme;
  }
  return std::nullopt;
}

}  // namespace runahead
