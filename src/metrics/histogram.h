// A Prometheus-style histogram with fixed upper bounds, recorded lock-free.
//
// Threading: observe() from any thread (relaxed atomics, no allocation).
// snapshot() from any thread; a snapshot taken while writers are active may
// see a sum that lags the bucket counts by the in-flight observations, but
// the bucket counts themselves are always self-consistent (count is derived
// from them, so the +Inf bucket always equals _count).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace kr {

struct HistogramSnapshot {
  std::vector<double> upper_bounds;  // finite, ascending; +Inf is implicit
  std::vector<uint64_t> cumulative;  // [upper_bounds.size() + 1]; last = +Inf = count
  uint64_t count = 0;
  double sum = 0;
};

class AtomicHistogram {
 public:
  // upper_bounds: finite, strictly ascending (checked).
  explicit AtomicHistogram(std::vector<double> upper_bounds);

  // A value v lands in the first bucket with v <= bound (Prometheus "le").
  // NaN is dropped: it would poison _sum forever.
  void observe(double v);
  HistogramSnapshot snapshot() const;
  const std::vector<double>& upper_bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // [bounds_.size() + 1], not cumulative
  std::atomic<double> sum_{0.0};
};

// vLLM's bucket helper: 1, 2, 5, 10, 20, 50, ... up to and including max_value.
std::vector<double> buckets_1_2_5(double max_value);

}  // namespace kr
