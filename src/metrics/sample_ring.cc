#include "metrics/sample_ring.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/check.h"
#include "base/percentile.h"

namespace kr {

SampleRing::SampleRing(int32_t capacity)
    : capacity_(capacity), slots_(std::make_unique<std::atomic<double>[]>(capacity)) {
  KR_CHECK(capacity >= 1);
  for (int32_t i = 0; i < capacity_; ++i) {
    slots_[i].store(std::numeric_limits<double>::quiet_NaN(), std::memory_order_relaxed);
  }
}

void SampleRing::add(double v) {
  if (std::isnan(v)) return;  // NaN marks an empty slot
  const uint64_t i = next_.fetch_add(1, std::memory_order_relaxed);
  slots_[i % static_cast<uint64_t>(capacity_)].store(v, std::memory_order_relaxed);
}

std::vector<double> SampleRing::samples() const {
  std::vector<double> out;
  out.reserve(capacity_);
  for (int32_t i = 0; i < capacity_; ++i) {
    const double v = slots_[i].load(std::memory_order_relaxed);
    if (!std::isnan(v)) out.push_back(v);
  }
  return out;
}

SampleSummary summarize(std::vector<double>& values) {
  SampleSummary s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.min = values.front();
  s.max = values.back();
  double total = 0;
  for (double v : values) total += v;
  s.mean = total / static_cast<double>(values.size());
  s.p50 = percentile_sorted(values, 0.50);
  s.p95 = percentile_sorted(values, 0.95);
  s.p99 = percentile_sorted(values, 0.99);
  return s;
}

}  // namespace kr
