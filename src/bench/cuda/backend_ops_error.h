// kr-backend-ops' error measure, shared by its op groups (backend_ops_main.cc,
// backend_ops_quant.cc): the largest absolute difference relative to the
// reference's largest magnitude. Threading: any (pure).
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

}  // namespace kr
