// Tests of Metrics as a whole: concurrent recording, /stats summaries, and
// rate windows on a fake clock.
#include "metrics/metrics.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "metrics/exposition_parser_for_test.h"

namespace kr {
namespace {

TEST(Metrics, ConcurrentRecordingIsExactAndScrapesStayValid) {
  FakeClock clock;
  Metrics m(&clock, MetricsOptions{.model_name = "m"});
  constexpr int kThreads = 4, kPerThread = 1'000'000;
  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0}, bad_scrapes{0};
  std::thread scraper([&] {
    while (!done.load()) {
      const Parsed p = parse_exposition(m.render_prometheus());
      if (!p.errors.empty()) bad_scrapes.fetch_add(1);
      scrapes.fetch_add(1);
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&m] {
      for (int i = 0; i < kPerThread; ++i) {
        switch (i % 4) {
          case 0:
            m.record_inter_token(0.02);
            break;
          case 1:
            m.record_step(i % 8 + 1, 16, 0.001);
            break;
          case 2:
            m.record_arrival();
            break;
          default:
            m.record_finished(FinishReason::kStop, 0.5, 10, 5);
            break;
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  done.store(true);
  scraper.join();
  EXPECT_GT(scrapes.load(), 0);
  EXPECT_EQ(bad_scrapes.load(), 0);

  constexpr uint64_t kEach = kThreads * kPerThread / 4;
  const StatsSnapshot s = m.stats();
  EXPECT_EQ(s.requests_finished, kEach);
  EXPECT_EQ(s.prompt_tokens, 10 * kEach);
  EXPECT_EQ(s.generation_tokens, 5 * kEach);
  uint64_t steps = 0;
  for (const auto& [size, n] : s.batch_size_counts) {
    EXPECT_TRUE(size % 2 == 0) << size;  // i % 4 == 1 -> i % 8 in {1, 5} -> sizes 2 and 6
    steps += n;
  }
  EXPECT_EQ(steps, kEach);
  EXPECT_EQ(s.batch_size_counts.at(2), kEach / 2);
  // Tokens counted by the inter-token records; the fake clock never moved.
  EXPECT_DOUBLE_EQ(s.tokens_per_s_60s, static_cast<double>(kEach));

  const Parsed p = parse_exposition(m.render_prometheus());
  ASSERT_TRUE(p.errors.empty()) << p.errors.front();
  const Labels model = {{"model_name", "m"}};
  EXPECT_EQ(value_of(p, "krserve_inter_token_latency_seconds_count", model), kEach);
  EXPECT_NEAR(value_of(p, "krserve_inter_token_latency_seconds_sum", model), 0.02 * kEach, 1e-3);
  EXPECT_EQ(value_of(p, "krserve_requests_received_total", model), kEach);
  EXPECT_EQ(value_of(p, "krserve_step_duration_seconds_count", model), kEach);
  EXPECT_EQ(value_of(p, "krserve_request_success_total",
                     {{"model_name", "m"}, {"finished_reason", "stop"}}),
            kEach);
  EXPECT_EQ(value_of(p, "krserve_prompt_tokens_total", model), 10 * kEach);
}

TEST(Metrics, StatsPercentilesAndCounts) {
  FakeClock clock;
  Metrics m(&clock, MetricsOptions{});
  for (int i = 1; i <= 100; ++i) {
    // Reverse order: the ring must not depend on arrival order.
    m.record_finished(i % 2 ? FinishReason::kStop : FinishReason::kLength, 101 - i, 3, 4);
    m.record_first_token((101 - i) / 1000.0);
  }
  m.record_finished(FinishReason::kCancelled, 1000, 3, 1);  // not in the latency percentiles
  m.record_finished(FinishReason::kError, 2000, 3, 0);
  m.set_queue(/*running=*/7, /*waiting=*/9, /*swapped=*/0);
  m.set_scheduler_state(
      SchedulerState{.window_ms = 2.5, .admissions_per_step = 16, .auto_tune = true, .ema_p99_ttft_ms = 80});
  clock.advance_ms(2500);

  const StatsSnapshot s = m.stats();
  EXPECT_DOUBLE_EQ(s.uptime_s, 2.5);
  EXPECT_DOUBLE_EQ(s.latency_min_s, 1);
  EXPECT_DOUBLE_EQ(s.latency_max_s, 100);
  EXPECT_DOUBLE_EQ(s.latency_mean_s, 50.5);
  EXPECT_NEAR(s.latency_p50_s, 50.5, 1e-9);
  EXPECT_NEAR(s.latency_p95_s, 95.05, 1e-9);
  EXPECT_NEAR(s.latency_p99_s, 99.01, 1e-9);
  EXPECT_NEAR(s.ttft_p50_s, 0.0505, 1e-12);
  EXPECT_NEAR(s.ttft_p99_s, 0.09901, 1e-12);
  EXPECT_EQ(s.requests_finished, 102u);
  EXPECT_EQ(s.requests_failed, 1u);
  EXPECT_EQ(s.prompt_tokens, 306u);
  EXPECT_EQ(s.generation_tokens, 401u);
  EXPECT_EQ(s.running, 7);
  EXPECT_EQ(s.queue_depth, 9);
  EXPECT_DOUBLE_EQ(s.scheduler.window_ms, 2.5);
  EXPECT_EQ(s.scheduler.admissions_per_step, 16);
  EXPECT_TRUE(s.scheduler.auto_tune);
  EXPECT_DOUBLE_EQ(s.scheduler.ema_p99_ttft_ms, 80);
}

TEST(Metrics, PercentileWindowKeepsOnlyRecentRequests) {
  FakeClock clock;
  Metrics m(&clock, MetricsOptions{.percentile_window = 10});
  for (int i = 1; i <= 20; ++i) m.record_finished(FinishReason::kStop, i, 1, 1);
  const StatsSnapshot s = m.stats();
  EXPECT_DOUBLE_EQ(s.latency_min_s, 11);
  EXPECT_DOUBLE_EQ(s.latency_max_s, 20);
  EXPECT_EQ(s.requests_finished, 20u);
}

TEST(Metrics, RateWindowsOnAFakeClock) {
  FakeClock clock;  // starts at exactly 1 s
  Metrics m(&clock, MetricsOptions{});
  // One burst per second at x.5 s: 100 generated tokens and 2 finished requests.
  auto burst = [&] {
    m.record_first_token(0.01);
    for (int i = 0; i < 99; ++i) m.record_inter_token(0.01);
    m.record_finished(FinishReason::kStop, 1, 1, 50);
    m.record_finished(FinishReason::kLength, 1, 1, 50);
  };
  clock.advance_ms(500);
  burst();
  StatsSnapshot s = m.stats();
  EXPECT_DOUBLE_EQ(s.tokens_per_s_5s, 100.0);  // 0.5 s of uptime counts as 1 s
  for (int k = 1; k < 60; ++k) {
    clock.advance_ms(1000);
    burst();
  }
  // Now 60.5 s on the clock, 59.5 s of uptime, bursts at 1.5 .. 60.5.
  s = m.stats();
  EXPECT_NEAR(s.tokens_per_s_5s, 500 / 4.5, 1e-9);     // seconds 56..60.5
  EXPECT_NEAR(s.tokens_per_s_30s, 3000 / 29.5, 1e-9);  // seconds 31..60.5
  EXPECT_NEAR(s.tokens_per_s_60s, 6000 / 59.5, 1e-9);  // since start
  EXPECT_NEAR(s.requests_per_s_5s, 10 / 4.5, 1e-9);
  EXPECT_NEAR(s.requests_per_s_30s, 60 / 29.5, 1e-9);
  EXPECT_NEAR(s.requests_per_s_60s, 120 / 59.5, 1e-9);
  clock.advance_ms(10'000);  // 10 quiet seconds
  s = m.stats();
  EXPECT_DOUBLE_EQ(s.tokens_per_s_5s, 0);
  EXPECT_NEAR(s.tokens_per_s_30s, 2000 / 29.5, 1e-9);  // bursts at 41.5 .. 60.5
  clock.advance_ms(100'000);  // long idle: slots hold old seconds, none counted
  s = m.stats();
  EXPECT_DOUBLE_EQ(s.tokens_per_s_60s, 0);
  EXPECT_DOUBLE_EQ(s.requests_per_s_60s, 0);
}

}  // namespace
}  // namespace kr
