// A worker's start-up probe (per-token and per-key seconds, planner/cost_probe.h) reaches the
// coordinator as a claim in its Hello: the planner weighs workers by it, so a claim decides how
// much of every prompt a worker is handed. The rules below keep a wrong claim (a broken probe,
// a misbehaving or impostor process) from taking over the partition:
//
//  1. At join, a claim that is not finite, negative, or beyond kMaxClaimedSeconds per token or
//     per key is refused (check_claimed_cost).
//  2. When planning, a claim more than kClaimTrustFactor times faster than the median of the
//     other candidates' claims (or, for a worker a calibration profile does not know, of the
//     profile's measured costs) is not trusted: it is raised to that median / the factor
//     (trusted_costs). A worker then gets at most about kClaimTrustFactor times the share of a
//     typical one (with two workers, at most 4 of 5 tokens), never nearly all of a prompt.
//     Claims of being slower are taken as they are: they only cost the claimant work.
//  Workers that are really that different (a GPU beside CPUs) are planned by what was measured
//  of them: a calibration profile (`runahead calibrate`), which the planner prefers to claims.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "planner/partition.h"

namespace runahead {

constexpr double kMaxClaimedSeconds = 60.0;
constexpr double kClaimTrustFactor = 4.0;

// kInvalidArgument naming `worker` and the figure when a claim breaks rule 1.
[[nodiscard]] Status check_claimed_cost(const SliceCost& claim, const std::string& worker);

// `claims` with rule 2 applied against the median of the other claims; unmeasured claims
// (per_token 0) are left as they are and not counted.
std::vector<SliceCost> trusted_costs(std::span<const SliceCost> claims);
// One claim with rule 2 applied against the median of `reference`.
SliceCost trusted_cost(const SliceCost& claim, std::span<const SliceCost> reference);

}  // namespace runahead
