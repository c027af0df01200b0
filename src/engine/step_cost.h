// Step cost model: what one forward step of the model is expected to take on its
// backend, as the scheduler's time budget (EngineConfig::max_step_ms) needs it.
// A roofline sum of terms, each a count the scheduler knows before the step:
//
//   ms = fixed_ms                                  weights read once, launches
//      + token_ms  × tokens fed                    each token's matmuls
//      + pair_ms   × attention pairs of chunks     (query, key) pairs of prefill
//                                                  chunks (causal; a chunk of n at
//                                                  start s: n s + n (n + 1) / 2)
//      + ctx_ms    × keys read                     K/V bytes: a decode token reads
//                                                  its sequence's context once; a
//                                                  chunk once per tile of
//                                                  tile_tokens queries
//
// with the attention terms split between full-attention layers and sliding-window
// layers (keys clipped to the window). So a chunk against 30k tokens of context
// costs what its attention costs, not only its token count. The coefficients come
// from the model's shape and the backend's rates (ModelRunner::step_cost_model);
// StepBudget then corrects them online by the measured step times.
//
// Threading: engine thread only.
#pragma once

#include <cstdint>

namespace kr {

struct StepCostModel {
  double fixed_ms = 0.0;         // per step
  double token_ms = 0.0;         // per token fed (> 0: the model is known)
  double pair_ms = 0.0;          // per (query, key) pair over the full-attention layers
  double window_pair_ms = 0.0;   // per pair over the sliding-window layers
  double ctx_ms = 0.0;           // per key read (K and V rows), full-attention layers
  double window_ctx_ms = 0.0;    // the same, sliding-window layers (keys clipped)
  int32_t window = 0;            // the sliding window (0: no sliding layer)
  int32_t tile_tokens = 1;       // query tokens of a chunk that share one read of the keys

  bool known() const { return token_ms > 0.0; }
  // n tokens at positions [start, start + n) of one sequence (n == 1: a decode
  // token); grows with n.
  double chunk_ms(int64_t start, int64_t n) const;
};

// (query, key) pairs of n causal queries at positions [start, start + n), each
// seeing at most `window` keys (0: all up to itself).
double attention_pairs(int64_t start, int64_t n, int64_t window);

// A StepCostModel with an online correction: a scale on its estimates, from the
// measured times of the steps that fed a prefill chunk. Steps with decodes (the
// ones the time budget shapes) keep a scale of their own, started from the other
// steps' when they have none; the first measurement of each kind replaces the
// prior, later ones move it by kAlphaUp when the step ran longer than the scale
// said, by kAlpha when shorter: a slow spell (the H200 steps of a long prefill
// among 16 streams ran 1.3-1.7x their estimate for 2-3 steps in a row) shortens
// the next chunks at once, a fast one lengthens them gradually. Until kWarmupSteps steps with decodes have
// been measured, their scale carries kColdMargin more, so that a cold server's
// first mixed steps err on the short side.
class StepBudget {
 public:
  void set_model(const StepCostModel& m) { model_ = m; }
  const StepCostModel& model() const { return model_; }
  bool known() const { return model_.known(); }
  // The scale applied to a step's estimate: with decodes (mixed) or without.
  double scale(bool mixed = true) const;

  // Unscaled estimates (what observe() compares measurements with).
  double fixed_ms() const { return model_.fixed_ms; }
  double chunk_ms(int64_t start, int64_t n) const { return model_.chunk_ms(start, n); }
  // The largest n in [0, want] whose chunk at `start` costs at most `ms` (unscaled).
  int32_t max_tokens(int64_t start, int32_t want, double ms) const;

  // A step estimated at `estimated_ms` (unscaled, with a prefill chunk; `mixed`:
  // with decodes) took `measured_ms`. Estimates under 1 ms are ignored (noise);
  // scales stay within [kMinScale, kMaxScale].
  void observe(double estimated_ms, double measured_ms, bool mixed);
  static constexpr double kMinScale = 0.2, kMaxScale = 5.0;
  static constexpr double kAlpha = 0.3, kAlphaUp = 0.6;
  static constexpr double kColdMargin = 1.5;
  static constexpr int kWarmupSteps = 4;

 private:
  StepCostModel model_;
  double plain_scale_ = 1.0, mixed_scale_ = 1.0;
  int plain_seen_ = 0, mixed_seen_ = 0;
};

}  // namespace kr
