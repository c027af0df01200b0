#include "bench/kr_bench/stats.h"

#include <algorithm>
#include <cmath>

#include "base/check.h"
#include "base/percentile.h"

namespace kr::bench {

double percentile_sorted(const std::vector<double>& sorted, double p) {
  KR_CHECK(!sorted.empty());
  KR_CHECK(p >= 0 && p <= 100);
  return kr::percentile_sorted(sorted, p / 100.0);
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return percentile_sorted(values, p);
}

double mean(const std::vector<double>& values) {
  if (values.empty()) return 0;
  double sum = 0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

double sample_std(const std::vector<double>& values) {
  if (values.size() < 2) return 0;
  const double m = mean(values);
  double ss = 0;
  for (double v : values) ss += (v - m) * (v - m);
  return std::sqrt(ss / static_cast<double>(values.size() - 1));
}

Summary summarize(std::vector<double> values) {
  Summary s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.count = values.size();
  s.mean = mean(values);
  s.std = sample_std(values);
  s.min = values.front();
  s.max = values.back();
  s.median = s.p50 = percentile_sorted(values, 50);
  s.p90 = percentile_sorted(values, 90);
  s.p95 = percentile_sorted(values, 95);
  s.p99 = percentile_sorted(values, 99);
  return s;
}

}  // namespace kr::bench
