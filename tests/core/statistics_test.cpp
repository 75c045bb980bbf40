#include "core/statistics.h"

#include <gtest/gtest.h>

#include <cmath>

namespace runahead {
namespace {

TEST(MedianTest, OddCountTakesTheMiddleValue) {
  EXPECT_DOUBLE_EQ(median({3.0, 1.0, 2.0}), 2.0);
  EXPECT_DOUBLE_EQ(median({5.0}), 5.0);
  EXPECT_DOUBLE_EQ(median({9.0, 1.0, 1.0, 8.0, 2.0}), 2.0);
}

TEST(MedianTest, EvenCountAveragesTheTwoMiddleValues) {
  EXPECT_DOUBLE_EQ(median({4.0, 1.0}), 2.5);
  EXPECT_DOUBLE_EQ(median({10.0, 1.0, 3.0, 2.0}), 2.5);
}

TEST(MedianTest, EmptyIsNaN) {
  EXPECT_TRUE(std::isnan(median({})));
}

}  // namespace
}  // namespace runahead
