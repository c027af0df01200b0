// AutoTuner: adjusts the batching window and the admissions per step from
// latency feedback. Each interval it takes P99 of the recent TTFT and
// inter-token-latency samples (a sliding window, emptied after each change
// so that it reflects the current settings), folds them into EMAs and
// compares them with the targets:
//  - ITL above target (beyond the dead band): admit fewer per step (prefill
//    chunks joining a step slow every running stream);
//  - TTFT above target: shorten the window; admit more when a queue is
//    waiting and ITL is under its target;
//  - ITL well under target with a queue: admit more; the window grows back
//    towards its configured value only when queued arrivals exceed the
//    admissions per step (batching has something to gain).
// Emergency (P99 > 2x target and > 1.5x EMA): step down twice as far, without
// waiting for the interval. With adaptive_only (KR_ADAPTIVE_WINDOW without
// KR_AUTO_TUNE) only the window moves.
//
// Threading: engine thread only.
#pragma once

#include <cstdint>
#include <deque>

#include "engine/engine_config.h"

namespace kr {

class AutoTuner {
 public:
  AutoTuner(const AutoTuneConfig& config, bool adaptive_only, double window_ms, int32_t admissions_per_step);

  void add_ttft_ms(double ms);
  void add_itl_ms(double ms);
  // Once per engine step. True when window_ms() or admissions_per_step() changed.
  bool on_step(int32_t queue_depth);

  double window_ms() const { return window_ms_; }
  int32_t admissions_per_step() const { return admissions_per_step_; }
  double ema_ttft_ms() const { return ema_ttft_ms_; }
  double ema_itl_ms() const { return ema_itl_ms_; }
  int64_t adjustments() const { return adjustments_; }

  static constexpr double kDeadBand = 0.2;       // +-20% around a target: no change
  static constexpr size_t kSampleWindow = 128;   // recent samples for P99
  static constexpr double kWindowStepMs = 0.25;

 private:
  static double p99(const std::deque<double>& v);
  bool adjust(int32_t queue_depth, bool emergency);

  AutoTuneConfig config_;
  bool adaptive_only_;
  double window_ms_;
  double window_ceiling_ms_;  // the configured window: grown back to, not past
  int32_t admissions_per_step_;
  std::deque<double> ttft_ms_, itl_ms_;
  bool new_ttft_ = false, new_itl_ = false;
  double ema_ttft_ms_ = 0, ema_itl_ms_ = 0;
  bool have_ema_ = false;
  int64_t steps_since_adjust_ = 0;
  int64_t adjustments_ = 0;
};

}  // namespace kr
