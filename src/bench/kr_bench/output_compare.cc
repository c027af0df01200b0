#include "bench/kr_bench/output_compare.h"

#include <algorithm>
#include <cmath>

namespace kr::bench {
namespace {

using json = nlohmann::json;

json margin_json(const TurnAnswer& a, size_t i) {
  if (i >= a.margins.size() || std::isnan(a.margins[i])) return nullptr;
  return a.margins[i];
}

}  // namespace

json compare_outputs(const SessionAnswers& reference, const SessionAnswers& other, int sessions, int turns,
                     double margin_threshold) {
  int compared = 0, identical = 0, incomplete = 0, above = 0, below = 0;
  int64_t tokens = 0, low_margin_tokens = 0, unknown_margin_tokens = 0;
  json divergences = json::array();
  for (int s = 0; s < sessions; ++s) {
    bool started = false, diverged = false, complete = true;
    for (int t = 0; t < turns && !diverged; ++t) {
      const auto r = reference.find({s, t});
      const auto o = other.find({s, t});
      if (r == reference.end() || o == other.end()) {
        complete = false;
        break;
      }
      started = true;
      const TurnAnswer& ra = r->second;
      const TurnAnswer& oa = o->second;
      const size_t n = std::min(ra.ids.size(), oa.ids.size());
      size_t i = 0;
      while (i < n && ra.ids[i] == oa.ids[i]) ++i;
      const size_t upto = std::min(i + 1, ra.ids.size());  // the reference's compared tokens, the differing one too
      for (size_t k = 0; k < upto; ++k) {
        const double m = k < ra.margins.size() ? ra.margins[k] : std::nan("");
        if (std::isnan(m)) {
          ++unknown_margin_tokens;
        } else if (m <= margin_threshold) {
          ++low_margin_tokens;
        }
      }
      tokens += static_cast<int64_t>(i);
      if (i == n && ra.ids.size() == oa.ids.size()) continue;
      diverged = true;
      tokens += 1;  // the differing token (or the missing one) is compared too
      const json ref_margin = margin_json(ra, i);
      const bool excused = i < n && ref_margin.is_number() && ref_margin.get<double>() <= margin_threshold;
      (excused ? below : above) += 1;
      divergences.push_back({{"session", s},
                             {"turn", t},
                             {"token_index", i},
                             {"reference_id", i < ra.ids.size() ? json(ra.ids[i]) : json(nullptr)},
                             {"id", i < oa.ids.size() ? json(oa.ids[i]) : json(nullptr)},
                             {"reference_margin", ref_margin},
                             {"margin", margin_json(oa, i)},
                             {"above_margin", !excused}});
    }
    if (!started) {
      ++incomplete;
      continue;
    }
    ++compared;
    if (!complete && !diverged) ++incomplete;
    if (complete && !diverged) ++identical;
  }
  return {{"margin_threshold", margin_threshold},
          {"sessions_compared", compared},
          {"sessions_identical", identical},
          {"sessions_incomplete", incomplete},
          {"tokens_compared", tokens},
          {"tokens_at_or_below_margin", low_margin_tokens},
          {"tokens_margin_unknown", unknown_margin_tokens},
          {"divergences", divergences},
          {"divergences_above_margin", above},
          {"divergences_at_or_below_margin", below},
          {"pass", above == 0}};
}

}  // namespace kr::bench
