// Tests of the building blocks: histogram, sample ring, per-second rates,
// exposition formatting.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "metrics/exposition.h"
#include "metrics/histogram.h"
#include "metrics/rate_window.h"
#include "metrics/sample_ring.h"

namespace kr {
namespace {

TEST(AtomicHistogram, BucketsAreInclusiveAndCumulative) {
  AtomicHistogram h({0.1, 1.0, 10.0});
  for (double v : {0.05, 0.1, 0.5, 1.0, 5.0, 100.0, -1.0}) h.observe(v);
  h.observe(std::numeric_limits<double>::quiet_NaN());  // dropped
  const HistogramSnapshot s = h.snapshot();
  ASSERT_EQ(s.cumulative.size(), 4u);
  EXPECT_EQ(s.cumulative[0], 3u);  // -1, 0.05, 0.1 (le is inclusive)
  EXPECT_EQ(s.cumulative[1], 5u);  // + 0.5, 1.0
  EXPECT_EQ(s.cumulative[2], 6u);  // + 5.0
  EXPECT_EQ(s.cumulative[3], 7u);  // + 100 in +Inf
  EXPECT_EQ(s.count, 7u);
  EXPECT_DOUBLE_EQ(s.sum, 0.05 + 0.1 + 0.5 + 1.0 + 5.0 + 100.0 - 1.0);
}

TEST(AtomicHistogram, ConcurrentObservationsAreExact) {
  AtomicHistogram h({1, 2, 3});
  constexpr int kThreads = 4, kPerThread = 200000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&h] {
      for (int i = 0; i < kPerThread; ++i) h.observe(static_cast<double>(i % 4));  // 0,1,2,3
    });
  }
  for (auto& t : threads) t.join();
  const HistogramSnapshot s = h.snapshot();
  const uint64_t quarter = kThreads * kPerThread / 4;
  EXPECT_EQ(s.cumulative[0], 2 * quarter);  // 0 and 1
  EXPECT_EQ(s.cumulative[1], 3 * quarter);
  EXPECT_EQ(s.cumulative[2], 4 * quarter);
  EXPECT_EQ(s.cumulative[3], 4 * quarter);
  EXPECT_EQ(s.count, 4 * quarter);
  EXPECT_DOUBLE_EQ(s.sum, 6.0 * quarter);  // integers: exact in double
}

TEST(Buckets125, MatchesVllmSeries) {
  EXPECT_EQ(buckets_1_2_5(100), (std::vector<double>{1, 2, 5, 10, 20, 50, 100}));
  EXPECT_EQ(buckets_1_2_5(4096),
            (std::vector<double>{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000}));
  EXPECT_EQ(buckets_1_2_5(1), (std::vector<double>{1}));
}

TEST(SampleRing, KeepsTheMostRecentCapacitySamples) {
  SampleRing ring(10);
  EXPECT_TRUE(ring.samples().empty());
  for (int i = 1; i <= 25; ++i) ring.add(i);
  std::vector<double> s = ring.samples();
  std::sort(s.begin(), s.end());
  std::vector<double> want;
  for (int i = 16; i <= 25; ++i) want.push_back(i);
  EXPECT_EQ(s, want);
  EXPECT_EQ(ring.total_added(), 25u);
}

TEST(SampleRing, PercentilesOfAKnownSample) {
  // 1..100 shuffled: numpy's linear percentiles are p50 50.5, p95 95.05, p99 99.01.
  std::vector<double> v;
  for (int i = 0; i < 100; ++i) v.push_back(static_cast<double>((i * 37) % 100 + 1));
  const SampleSummary s = summarize(v);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 100);
  EXPECT_DOUBLE_EQ(s.mean, 50.5);
  EXPECT_NEAR(s.p50, 50.5, 1e-9);
  EXPECT_NEAR(s.p95, 95.05, 1e-9);
  EXPECT_NEAR(s.p99, 99.01, 1e-9);

  std::vector<double> one = {7};
  const SampleSummary o = summarize(one);
  EXPECT_DOUBLE_EQ(o.p50, 7);
  EXPECT_DOUBLE_EQ(o.p99, 7);
  std::vector<double> none;
  EXPECT_DOUBLE_EQ(summarize(none).p99, 0);
}

TEST(PerSecondCounter, SumsTheLastSeconds) {
  PerSecondCounter c;
  constexpr int64_t kS = 1'000'000'000;
  // 10 events in each of seconds 100..139, 1 extra at 139.9.
  for (int64_t s = 100; s < 140; ++s) c.add(s * kS + kS / 2, 10);
  c.add(139 * kS + 9 * kS / 10, 1);
  const int64_t now = 139 * kS + 95 * kS / 100;
  EXPECT_EQ(c.sum_last(now, 1), 11u);
  EXPECT_EQ(c.sum_last(now, 5), 51u);  // seconds 135..139
  EXPECT_EQ(c.sum_last(now, 40), 401u);
  EXPECT_EQ(c.sum_last(now, 60), 401u);
  // A slot reused 64 s later forgets its old second.
  c.add(164 * kS, 3);                                     // same slot as second 100
  EXPECT_EQ(c.sum_last(164 * kS, 60), 10u * 35 + 1 + 3);  // seconds 105..139, and 164
  // Nothing recent: all windows empty, even though slots hold old counts.
  EXPECT_EQ(c.sum_last(300 * kS, 60), 0u);
}

TEST(PerSecondCounter, ConcurrentAddsAreExact) {
  PerSecondCounter c;
  FakeClock clock;
  constexpr int kThreads = 4, kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        c.add(clock.now_ns(), 1);
        if (i % 1000 == 0) clock.advance_ms(1);  // crosses second boundaries while racing
      }
    });
  }
  for (auto& t : threads) t.join();
  // Total time advanced: 400 ms, far inside a 60 s window.
  EXPECT_EQ(c.sum_last(clock.now_ns(), 60), static_cast<uint64_t>(kThreads) * kPerThread);
}

TEST(RateSpan, CoversWindowPartialSecondAndStart) {
  constexpr int64_t kS = 1'000'000'000;
  EXPECT_DOUBLE_EQ(rate_span_s(0, 100 * kS + kS / 2, 5), 4.5);
  EXPECT_DOUBLE_EQ(rate_span_s(98 * kS, 100 * kS + kS / 2, 5), 2.5);   // started 2.5 s ago
  EXPECT_DOUBLE_EQ(rate_span_s(100 * kS, 100 * kS + kS / 4, 5), 1.0);  // floor of 1 s
}

TEST(Exposition, FormatsNumbersAndEscapes) {
  EXPECT_EQ(format_double(0.001), "0.001");
  EXPECT_EQ(format_double(2560), "2560");
  EXPECT_EQ(format_double(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_double(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_double(std::nan("")), "NaN");
  EXPECT_EQ(format_le(1), "1.0");
  EXPECT_EQ(format_le(0.25), "0.25");
  EXPECT_EQ(format_le(1e21), "1e+21");
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(escape_help("x\\y\nz\""), "x\\\\y\\nz\"");
}

TEST(Exposition, WritesAHistogram) {
  AtomicHistogram h({0.5, 1});
  h.observe(0.25);
  h.observe(2);
  std::string out;
  ExpositionWriter w(&out);
  const Label labels[] = {{"model_name", "m"}};
  w.family("x_seconds", "histogram", "Help.");
  w.histogram("x_seconds", labels, h.snapshot());
  EXPECT_EQ(out,
            "# HELP x_seconds Help.\n"
            "# TYPE x_seconds histogram\n"
            "x_seconds_bucket{model_name=\"m\",le=\"0.5\"} 1\n"
            "x_seconds_bucket{model_name=\"m\",le=\"1.0\"} 1\n"
            "x_seconds_bucket{model_name=\"m\",le=\"+Inf\"} 2\n"
            "x_seconds_sum{model_name=\"m\"} 2.25\n"
            "x_seconds_count{model_name=\"m\"} 2\n");
}

}  // namespace
}  // namespace kr
