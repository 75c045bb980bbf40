// Summary statistics of measurements (timings above all).
#pragma once

#include <vector>

namespace runahead {

// The middle value of `values`; for an even count the mean of the two middle ones. NaN when
// empty. Timings are noisy in one direction (a run is slowed, never sped up), so a median
// describes them better than a mean.
double median(std::vector<double> values);

}  // namespace runahead
