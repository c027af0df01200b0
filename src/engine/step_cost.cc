#include "engine/step_cost.h"

#include <algorithm>

namespace kr {

double attention_pairs(int64_t start, int64_t n, int64_t window) {
  if (n <= 0) return 0.0;
  // Query at position p sees p + 1 keys, at most `window`.
  const double full = static_cast<double>(n) * static_cast<double>(start) +
                      static_cast<double>(n) * static_cast<double>(n + 1) / 2.0;
  if (window <= 0 || start + n <= window) return full;
  // Positions p < window - 1 see p + 1 keys; the others see window.
  const int64_t ramp_end = std::clamp<int64_t>(window - 1, start, start + n);  // first clipped position
  const int64_t r = ramp_end - start;
  const double ramp = static_cast<double>(r) * static_cast<double>(start) + static_cast<double>(r) * (r + 1) / 2.0;
  return ramp + static_cast<double>(n - r) * static_cast<double>(window);
}

double StepCostModel::chunk_ms(int64_t start, int64_t n) const {
  if (n <= 0) return 0.0;
  const double keys = static_cast<double>(start + n);  // the context a tile reads (at most)
  const double reads = static_cast<double>((n + std::max(1, tile_tokens) - 1) / std::max(1, tile_tokens));
  double ms = token_ms * static_cast<double>(n) + pair_ms * attention_pairs(start, n, 0);
  ms += reads * ctx_ms * keys;
  if (window > 0) {
    ms += window_pair_ms * attention_pairs(start, n, window);
    ms += reads * window_ctx_ms * std::min<double>(keys, window);
  }
  return ms;
}

int32_t StepBudget::max_tokens(int64_t start, int32_t want, double ms) const {
  if (want <= 0 || model_.chunk_ms(start, 1) > ms) return 0;
  if (model_.chunk_ms(start, want) <= ms) return want;
  // The cost grows with n: the largest n that fits, by bisection.
  int32_t lo = 1, hi = want;  // chunk_ms(lo) <= ms < chunk_ms(hi)
  while (hi - lo > 1) {
    const int32_t mid = lo + (hi - lo) / 2;
    (model_.chunk_ms(start, mid) <= ms ? lo : hi) = mid;
  }
  return lo;
}

double StepBudget::scale(bool mixed) const {
  if (!mixed) return plain_scale_;
  const double base = mixed_seen_ > 0 ? mixed_scale_ : plain_scale_;
  return mixed_seen_ < kWarmupSteps ? base * kColdMargin : base;
}

void StepBudget::observe(double estimated_ms, double measured_ms, bool mixed) {
  if (!(estimated_ms >= 1.0) || !(measured_ms > 0.0)) return;
  const double ratio = std::clamp(measured_ms / estimated_ms, kMinScale, kMaxScale);
  double& s = mixed ? mixed_scale_ : plain_scale_;
  int& seen = mixed ? mixed_seen_ : plain_seen_;
  const double alpha = ratio > s ? kAlphaUp : kAlpha;
  s = seen == 0 ? ratio : std::clamp((1.0 - alpha) * s + alpha * ratio, kMinScale, kMaxScale);
  ++seen;
}

}  // namespace kr
