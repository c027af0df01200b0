#include "metrics/histogram.h"

#include <algorithm>
#include <cmath>

#include "base/check.h"

namespace kr {

AtomicHistogram::AtomicHistogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    KR_CHECK(std::isfinite(bounds_[i]));
    if (i > 0) KR_CHECK_MSG(bounds_[i - 1] < bounds_[i], "histogram bounds must ascend");
  }
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void AtomicHistogram::observe(double v) {
  if (std::isnan(v)) return;
  // First bound >= v; past the end means the +Inf bucket.
  const size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

HistogramSnapshot AtomicHistogram::snapshot() const {
  HistogramSnapshot s;
  s.upper_bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> buckets_1_2_5(double max_value) {
  std::vector<double> out;
  for (double decade = 1; decade <= max_value; decade *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      if (m * decade > max_value) return out;
      out.push_back(m * decade);
    }
  }
  return out;
}

}  // namespace kr
