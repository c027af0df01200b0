// The interpolation rule of base/percentile.h against values computed by hand
// (numpy.percentile's default, "linear").
#include "base/percentile.h"

#include <vector>

#include <gtest/gtest.h>

namespace kr {
namespace {

TEST(Percentile, LinearBetweenClosestRanks) {
  const std::vector<double> v = {1, 2, 3, 4, 10};  // n - 1 = 4
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 1.0), 10.0);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 0.5), 3.0);   // rank 2 exactly
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 0.25), 2.0);  // rank 1 exactly
  EXPECT_NEAR(percentile_sorted(v, 0.1), 1.4, 1e-12);   // rank 0.4: 1 + 0.4 * (2 - 1)
  EXPECT_NEAR(percentile_sorted(v, 0.95), 8.8, 1e-12);  // rank 3.8: 4 + 0.8 * (10 - 4)
  const std::vector<double> even = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(percentile_sorted(even, 0.5), 2.5);  // not the lower or upper median
}

TEST(Percentile, EdgesClampAndSmallSamples) {
  const std::vector<double> v = {5, 6};
  EXPECT_DOUBLE_EQ(percentile_sorted(v, -0.5), 5.0);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 1.5), 6.0);
  const std::vector<double> one = {7};
  EXPECT_DOUBLE_EQ(percentile_sorted(one, 0.99), 7.0);
  EXPECT_DOUBLE_EQ(percentile_sorted({}, 0.5), 0.0);
}

}  // namespace
}  // namespace kr
