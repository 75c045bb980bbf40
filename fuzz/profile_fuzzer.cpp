// A calibration profile as `--profile` reads it (planner/profile.h Profile::parse). A profile
// that is accepted must validate, survive a to_json/parse round trip unchanged, give a chain
// model that validates for any chain of its workers (and of workers it does not know), and
// give searched partitions that are whole: rising cuts from 0 to the token count.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "planner/chain_model.h"
#include "planner/profile.h"

namespace {

void check_searched(const runahead::Profile& profile) {
  std::vector<int64_t> lengths{1, 2, 7, 4096, int64_t{1} << 40};
  std::vector<size_t> counts{1, 2, 3};
  for (const runahead::SearchedPartition& row : profile.searched) {
    lengths.push_back(row.tokens);
    lengths.push_back(row.tokens - 1);  // validate() keeps tokens >= 1
    if (row.tokens < std::numeric_limits<int64_t>::max()) lengths.push_back(row.tokens + 1);
    counts.push_back(row.workers());
  }
  for (const size_t count : counts) {
    for (const int64_t tokens : lengths) {
      auto cuts = profile.searched_cuts(tokens, count);
      if (!cuts) continue;
      RUNAHEAD_FUZZ_CHECK(cuts->size() == count + 1 && cuts->front() == 0 && cuts->back() == tokens,
                          "a searched partition does not cover the prompt");
      for (size_t i = 1; i < cuts->size(); ++i) {
        RUNAHEAD_FUZZ_CHECK((*cuts)[i] > (*cuts)[i - 1], "a searched partition has an empty slice");
      }
    }
  }
}

void check_chain(const runahead::Profile& profile) {
  std::vector<runahead::ChainWorker> chain;
  for (size_t i = 0; i < profile.workers.size() && i < 4; ++i) {
    chain.push_back({profile.workers[i].name, profile.workers[i].backend, {}});
  }
  chain.push_back({"unknown", "unknown backend", {}});
  chain.push_back({"measured", "", {1e-4, 1e-8}});
  const runahead::ChainModel model = profile.chain_model(chain);
  RUNAHEAD_FUZZ_CHECK(model.workers.size() == chain.size() && model.links.size() == chain.size(),
                      "a chain model has the wrong number of workers");
  RUNAHEAD_FUZZ_CHECK(model.validate().is_ok(), "a valid profile gives an invalid chain model");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto profile = runahead::Profile::parse(text, "fuzz/profile.json");
  if (!profile.is_ok()) return 0;
  RUNAHEAD_FUZZ_CHECK(profile->validate().is_ok(), "a parsed profile does not validate");
  const std::string json = profile->to_json();
  auto again = runahead::Profile::parse(json, "fuzz/profile.json (written back)");
  RUNAHEAD_FUZZ_CHECK(again.is_ok(), "a profile written by to_json does not parse");
  RUNAHEAD_FUZZ_CHECK(again->to_json() == json,
                      "a profile changed over a to_json/parse round trip");
  check_searched(*profile);
  check_chain(*profile);
  return 0;
}
