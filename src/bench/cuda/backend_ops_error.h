// kr-backend-ops' error measure, shared by its op groups (backend_ops_main.cc,
// backend_ops_quant.cc): the largest absolute difference relative to the
// reference's largest magnitude; and the top-2 margin from which a model's argmax
// must equal its reference's. Threading: any (pure).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace kr {

struct OpError {
  double max_abs = 0.0;  // max |ref - got|
  double rel = 0.0;      // max_abs / max |ref|; infinity when got has a NaN/Inf or a size differs
};

inline OpError op_error(const std::vector<float>& ref, const std::vector<float>& got) {
  OpError e;
  double max_ref = 1e-6;
  bool bad = ref.size() != got.size();
  for (size_t i = 0; i < ref.size() && !bad; ++i) {
    if (!std::isfinite(got[i])) {
      bad = true;
      break;
    }
    e.max_abs = std::max(e.max_abs, std::abs(static_cast<double>(ref[i]) - got[i]));
    max_ref = std::max(max_ref, std::abs(static_cast<double>(ref[i])));
  }
  e.rel = bad ? INFINITY : e.max_abs / max_ref;
  return e;
}

// The model checks (the fixtures and families, the quantized models) compare the
// GPU's argmax with a reference's wherever the reference's top-2 margin exceeds
// this. bf16 activations move a logit by a fraction of the logits' spread, so the
// margin is relative to it: 3% of the standard deviation of a case's last-position
// logits, at least 0.15. Seen on the H200: flips at margins 0.054-0.095 with logits
// of std 1.6 (Qwen2, Mistral), one at 0.165 with std 8.3 (Qwen3, whose q/k norms
// scale the scores).
constexpr double kMinArgmaxMargin = 0.15, kArgmaxMarginPerLogitStd = 0.03;
inline double argmax_margin_threshold(const std::vector<double>& last_logits) {
  if (last_logits.empty()) return kMinArgmaxMargin;
  double mean = 0, sq = 0;
  for (double v : last_logits) mean += v;
  mean /= static_cast<double>(last_logits.size());
  for (double v : last_logits) sq += (v - mean) * (v - mean);
  return std::max(kMinArgmaxMargin, kArgmaxMarginPerLogitStd * std::sqrt(sq / static_cast<double>(last_logits.size())));
}

}  // namespace kr
