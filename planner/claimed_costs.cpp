#include "planner/claimed_costs.h"

#include <algorithm>
#include <cmath>

namespace runahead {
namespace {

bool measured(const SliceCost& cost) {
  return cost.per_token > 0.0;
}

// The median of the positive values (the upper one of an even count: the slower).
double median_of(std::vector<double> values) {
  std::erase_if(values, [](double v) { return !(v > 0.0); });
  if (values.empty()) return 0.0;
  const size_t middle = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(middle),
                   values.end());
  return values[middle];
}

}  // namespace

Status check_claimed_cost(const SliceCost& claim, const std::string& worker) {
  for (const auto& [figure, value] :
       {std::pair{"per_token_seconds", claim.per_token}, {"per_key_seconds", claim.per_key}}) {
    if (!std::isfinite(value) || value < 0.0 || value > kMaxClaimedSeconds) {
      return make_error(ErrorCode::kInvalidArgument,
                        "worker " + worker + " claims " + figure + " = " + std::to_string(value) +
                            ", which no device measures (a finite value in [0, " +
                            std::to_string(static_cast<int>(kMaxClaimedSeconds)) + "] s)");
    }
  }
  return Status::ok();
}

SliceCost trusted_cost(const SliceCost& claim, std::span<const SliceCost> reference) {
  if (!measured(claim)) return claim;
  std::vector<double> tokens;
  std::vector<double> keys;
  for (const SliceCost& other : reference) {
    if (!measured(other)) continue;
    tokens.push_back(other.per_token);
    keys.push_back(other.per_key);
  }
  SliceCost trusted = claim;
  if (const double median = median_of(tokens); median > 0.0) {
    trusted.per_token = std::max(trusted.per_token, median / kClaimTrustFactor);
  }
  if (const double median = median_of(keys); median > 0.0) {
    trusted.per_key = std::max(trusted.per_key, median / kClaimTrustFactor);
  }
  return trusted;
}

std::vector<SliceCost> trusted_costs(std::span<const SliceCost> claims) {
  std::vector<SliceCost> out;
  out.reserve(claims.size());
  for (size_t i = 0; i < claims.size(); ++i) {
    std::vector<SliceCost> others(claims.begin(), claims.end());
    others.erase(others.begin() + static_cast<std::ptrdiff_t>(i));
    out.push_back(trusted_cost(claims[i], others));
  }
  return out;
}

}  // namespace runahead
