// Percentiles and std against values computed by hand (numpy's linear method).
#include "bench/kr_bench/stats.h"

#include <gtest/gtest.h>

namespace kr::bench {
namespace {

TEST(Stats, HandComputedSample) {
  // Unsorted on purpose. Sorted: 1 2 3 4 10; n-1 = 4.
  const std::vector<double> v = {10, 3, 1, 4, 2};
  const Summary s = summarize(v);
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.mean, 4.0);
  EXPECT_DOUBLE_EQ(s.median, 3.0);
  // rank 0.95*4 = 3.8 -> 4 + 0.8*(10-4) = 8.8
  EXPECT_NEAR(s.p95, 8.8, 1e-12);
  // rank 0.99*4 = 3.96 -> 4 + 0.96*6 = 9.76
  EXPECT_NEAR(s.p99, 9.76, 1e-12);
  // rank 0.9*4 = 3.6 -> 4 + 0.6*6 = 7.6
  EXPECT_NEAR(s.p90, 7.6, 1e-12);
  // squared deviations 9+4+1+0+36 = 50; 50/4 = 12.5
  EXPECT_NEAR(s.std, 3.5355339059327378, 1e-12);
  EXPECT_DOUBLE_EQ(s.min, 1.0);
  EXPECT_DOUBLE_EQ(s.max, 10.0);
  // rank 0.25*4 = 1 exactly -> 2; rank 0.1*4 = 0.4 -> 1 + 0.4*1 = 1.4
  EXPECT_DOUBLE_EQ(percentile(v, 25), 2.0);
  EXPECT_NEAR(percentile(v, 10), 1.4, 1e-12);
  EXPECT_DOUBLE_EQ(percentile(v, 0), 1.0);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 10.0);
}

TEST(Stats, EvenCountMedianInterpolates) {
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 50), 2.5);
}

TEST(Stats, SmallSamples) {
  const Summary empty = summarize({});
  EXPECT_EQ(empty.count, 0u);
  EXPECT_DOUBLE_EQ(empty.mean, 0.0);
  const Summary one = summarize({7});
  EXPECT_DOUBLE_EQ(one.p99, 7.0);
  EXPECT_DOUBLE_EQ(one.std, 0.0);  // undefined for n = 1; reported as 0
  EXPECT_NEAR(sample_std({1, 3}), 1.4142135623730951, 1e-12);
}

}  // namespace
}  // namespace kr::bench
