#include "engine/auto_tune.h"

#include <gtest/gtest.h>

#include <random>

namespace kr {
namespace {

AutoTuneConfig tune_config() {
  AutoTuneConfig c;
  c.enabled = true;
  c.target_ttft_p99_ms = 100;
  c.target_itl_p99_ms = 50;
  c.min_admissions_per_step = 1;
  c.max_admissions_per_step = 64;
  c.min_window_ms = 0;
  c.max_window_ms = 10;
  c.interval_steps = 10;
  return c;
}

struct Trace {
  int direction_changes = 0;
  int last_direction = 0;
  void note(double before, double after) {
    const int d = after > before ? 1 : after < before ? -1 : 0;
    if (d == 0) return;
    if (last_direction != 0 && d != last_direction) ++direction_changes;
    last_direction = d;
  }
};

// Synthetic system: ITL grows with admissions per step (5 ms each), TTFT
// sits at its target, a deep queue keeps pressure on. Every step gives 16 ITL
// samples with +-5% noise.
void run_itl_trace(AutoTuner* t, Trace* trace) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> noise(0.95, 1.05);
  for (int step = 0; step < 2000; ++step) {
    for (int i = 0; i < 16; ++i) t->add_itl_ms(5.0 * t->admissions_per_step() * noise(rng));
    t->add_ttft_ms(100.0 * noise(rng));
    const double before = t->admissions_per_step();
    t->on_step(/*queue_depth=*/100);
    trace->note(before, t->admissions_per_step());
  }
}

TEST(AutoTune, BatchSizeConvergesUpToTargetWithoutOscillating) {
  AutoTuner t(tune_config(), false, 1.0, 2);
  Trace trace;
  run_itl_trace(&t, &trace);
  // Target region: ITL within +-20% of 50 ms -> 8..12 admissions.
  EXPECT_GE(t.admissions_per_step(), 8);
  EXPECT_LE(t.admissions_per_step(), 12);
  EXPECT_LE(trace.direction_changes, 2);
  EXPECT_NEAR(t.ema_itl_ms(), 50.0, 12.0);
}

TEST(AutoTune, BatchSizeConvergesDownFromTooHigh) {
  AutoTuner t(tune_config(), false, 1.0, 64);
  Trace trace;
  run_itl_trace(&t, &trace);
  EXPECT_GE(t.admissions_per_step(), 8);
  EXPECT_LE(t.admissions_per_step(), 12);
  EXPECT_LE(trace.direction_changes, 2);
}

TEST(AutoTune, WindowShrinksWhenTtftIsHighAndStaysInBounds) {
  AutoTuneConfig c = tune_config();
  AutoTuner t(c, /*adaptive_only=*/true, 8.0, 4);
  Trace trace;
  for (int step = 0; step < 2000; ++step) {
    t.add_ttft_ms(60.0 + 40.0 * t.window_ms());  // 380 ms at 8 ms of window
    t.add_itl_ms(10);
    const double before = t.window_ms();
    t.on_step(0);
    trace.note(before, t.window_ms());
    EXPECT_GE(t.window_ms(), c.min_window_ms);
  }
  // TTFT <= 120 ms needs a window <= 1.5 ms; it must not shrink past the band either.
  EXPECT_LE(t.window_ms(), 1.5);
  EXPECT_GE(t.window_ms(), 0.5);
  EXPECT_EQ(t.admissions_per_step(), 4);  // adaptive window alone leaves admissions alone
  EXPECT_EQ(trace.direction_changes, 0);
}

TEST(AutoTune, EmergencyStepsDownAtOnceAndTwice) {
  AutoTuner t(tune_config(), false, 1.0, 20);
  for (int i = 0; i < 20; ++i) {  // settle the EMA at 40 ms
    for (int j = 0; j < 16; ++j) t.add_itl_ms(40);
    t.add_ttft_ms(100);
    t.on_step(0);
  }
  const int32_t before = t.admissions_per_step();
  for (int j = 0; j < 128; ++j) t.add_itl_ms(200);  // > 2x target and > 1.5x EMA
  EXPECT_TRUE(t.on_step(0));                        // no waiting for the interval
  EXPECT_EQ(t.admissions_per_step(), before - 2);
}

TEST(AutoTune, StaysInsideTheDeadBand) {
  AutoTuner t(tune_config(), false, 1.0, 10);
  for (int i = 0; i < 500; ++i) {
    for (int j = 0; j < 16; ++j) t.add_itl_ms(55);  // +10%: inside the band
    t.add_ttft_ms(110);
    t.on_step(100);
  }
  EXPECT_EQ(t.admissions_per_step(), 10);
  EXPECT_EQ(t.window_ms(), 1.0);
  EXPECT_EQ(t.adjustments(), 0);
}

}  // namespace
}  // namespace kr
