#include "engine/auto_tune.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace kr {

AutoTuner::AutoTuner(const AutoTuneConfig& config, bool adaptive_only, double window_ms, int32_t admissions_per_step)
    : config_(config),
      adaptive_only_(adaptive_only),
      window_ms_(std::clamp(window_ms, config.min_window_ms, config.max_window_ms)),
      window_ceiling_ms_(window_ms_),
      admissions_per_step_(adaptive_only ? admissions_per_step
                                : std::clamp(admissions_per_step, config.min_admissions_per_step, config.max_admissions_per_step)) {}

void AutoTuner::add_ttft_ms(double ms) {
  ttft_ms_.push_back(ms);
  if (ttft_ms_.size() > kSampleWindow) ttft_ms_.pop_front();
  new_ttft_ = true;
}

void AutoTuner::add_itl_ms(double ms) {
  itl_ms_.push_back(ms);
  if (itl_ms_.size() > kSampleWindow) itl_ms_.pop_front();
  new_itl_ = true;
}

double AutoTuner::p99(const std::deque<double>& v) {
  if (v.empty()) return 0.0;
  std::vector<double> s(v.begin(), v.end());
  const size_t k = static_cast<size_t>(std::ceil(0.99 * static_cast<double>(s.size()))) - 1;
  std::nth_element(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(k), s.end());
  return s[k];
}

bool AutoTuner::on_step(int32_t queue_depth) {
  ++steps_since_adjust_;
  if (!new_ttft_ && !new_itl_) return false;
  const double p_ttft = p99(ttft_ms_), p_itl = p99(itl_ms_);
  // Emergency check on the raw P99, before it is folded in.
  const bool emergency =
      have_ema_ && ((p_ttft > 2 * config_.target_ttft_p99_ms && p_ttft > 1.5 * ema_ttft_ms_) ||
                    (p_itl > 2 * config_.target_itl_p99_ms && p_itl > 1.5 * ema_itl_ms_));
  if (steps_since_adjust_ < config_.interval_steps && !emergency) return false;
  const double a = config_.ema_alpha;
  if (!have_ema_) {
    ema_ttft_ms_ = p_ttft;
    ema_itl_ms_ = p_itl;
    have_ema_ = true;
  } else {
    if (new_ttft_) ema_ttft_ms_ = a * p_ttft + (1 - a) * ema_ttft_ms_;
    if (new_itl_) ema_itl_ms_ = a * p_itl + (1 - a) * ema_itl_ms_;
  }
  new_ttft_ = new_itl_ = false;
  steps_since_adjust_ = 0;
  const bool changed = adjust(queue_depth, emergency);
  if (changed) {
    ++adjustments_;
    // Older samples describe the old settings; keeping them would make the
    // P99 lag and the controller overshoot.
    ttft_ms_.clear();
    itl_ms_.clear();
  }
  return changed;
}

bool AutoTuner::adjust(int32_t queue_depth, bool emergency) {
  const double r_ttft = ema_ttft_ms_ / config_.target_ttft_p99_ms;
  const double r_itl = itl_ms_.empty() ? 0.0 : ema_itl_ms_ / config_.target_itl_p99_ms;
  const bool ttft_high = r_ttft > 1 + kDeadBand, ttft_low = r_ttft < 1 - kDeadBand;
  const bool itl_high = r_itl > 1 + kDeadBand, itl_low = r_itl < 1 - kDeadBand;
  const int32_t step = emergency ? 2 : 1;
  const double old_window = window_ms_;
  const int32_t old_batch = admissions_per_step_;

  if (ttft_high) {
    window_ms_ -= step * kWindowStepMs;
  } else if (ttft_low && queue_depth > admissions_per_step_) {
    window_ms_ = std::min(window_ms_ + kWindowStepMs, window_ceiling_ms_);
  }
  window_ms_ = std::clamp(window_ms_, config_.min_window_ms, config_.max_window_ms);

  if (!adaptive_only_) {
    if (itl_high) {
      admissions_per_step_ -= step;
    } else if (queue_depth > 0 && (itl_low || (ttft_high && r_itl <= 1.0))) {
      // A queue waits: admit more while ITL has room (below the band, or
      // TTFT suffers and ITL is still under its target).
      admissions_per_step_ += 1;
    }
    admissions_per_step_ = std::clamp(admissions_per_step_, config_.min_admissions_per_step, config_.max_admissions_per_step);
  }
  return window_ms_ != old_window || admissions_per_step_ != old_batch;
}

}  // namespace kr
