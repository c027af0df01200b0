// Percentiles of a sample: the one definition used by the /stats sample ring
// (metrics/sample_ring.h) and by kr-bench's reports (bench/kr_bench/stats.h),
// so that a server-side p99 and a client-side p99 of the same latencies agree.
//
// The rule: linear interpolation between the closest ranks, numpy.percentile's
// default method ("linear", Hyndman & Fan type 7). For n ascending values and
// q in [0, 1] the rank is r = q * (n - 1); the result is
// sorted[floor(r)] + (r - floor(r)) * (sorted[floor(r) + 1] - sorted[floor(r)]).
// E.g. {1, 2, 3, 4} gives 2.5 at q = 0.5 and 1.3 at q = 0.1.
//
// Pure function; any thread.
#pragma once

#include <span>

namespace kr {

// `sorted` ascending; q is clamped to [0, 1]. An empty sample gives 0.
double percentile_sorted(std::span<const double> sorted, double q);

}  // namespace kr
