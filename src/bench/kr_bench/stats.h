// Summary statistics for benchmark samples. Percentiles are base/percentile.h's
// (linear between closest ranks, numpy.percentile's default), here on a 0..100
// scale; the standard deviation is the sample one (ddof = 1). Pure functions,
// any thread.
#pragma once

#include <cstddef>
#include <vector>

namespace kr::bench {

struct Summary {
  size_t count = 0;
  double mean = 0, median = 0, p50 = 0, p90 = 0, p95 = 0, p99 = 0, std = 0, min = 0, max = 0;
};

// p in [0, 100] (checked). `sorted` ascending and non-empty (checked).
double percentile_sorted(const std::vector<double>& sorted, double p);
// Copies and sorts; 0 for an empty sample.
double percentile(std::vector<double> values, double p);
double mean(const std::vector<double>& values);
// Sample standard deviation (n - 1 in the denominator); 0 for fewer than 2 values.
double sample_std(const std::vector<double>& values);
// All fields 0 (count 0) for an empty sample.
Summary summarize(std::vector<double> values);

}  // namespace kr::bench
