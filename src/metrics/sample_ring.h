// A bounded ring of the most recent samples (e.g. request latencies), for
// percentiles computed at scrape time.
//
// Threading: add() from any thread, lock-free and allocation-free (a writer
// claims a slot with one fetch_add, then stores into it). samples() from any
// thread; a slot claimed but not yet stored reads as its previous value, or
// is skipped while still empty, which is fine for a statistical summary.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace kr {

class SampleRing {
 public:
  explicit SampleRing(int32_t capacity);  // capacity >= 1
  void add(double v);
  std::vector<double> samples() const;  // at most capacity, unordered
  uint64_t total_added() const { return next_.load(std::memory_order_relaxed); }

 private:
  const int32_t capacity_;
  std::unique_ptr<std::atomic<double>[]> slots_;  // [capacity_], NaN = never written
  std::atomic<uint64_t> next_{0};
};

struct SampleSummary {
  double min = 0, max = 0, mean = 0, p50 = 0, p95 = 0, p99 = 0;
};

// Sorts `values` in place; all zeros when empty. Percentiles follow
// base/percentile.h (linear between closest ranks, numpy's default).
SampleSummary summarize(std::vector<double>& values);

}  // namespace kr
