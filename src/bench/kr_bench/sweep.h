// `kr-bench sweep`: for each configuration (or one external server), runs the
// requests of each concurrency level (optionally with Poisson arrivals) and
// writes sweep.json, sweep.md and SVG charts of throughput, TTFT P50/P99 and
// failures against concurrency into opts.out_dir. Call from the main thread.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "bench/kr_bench/target.h"

namespace kr::bench {

struct SweepOptions {
  std::vector<int> concurrency = {1, 4, 16, 64, 256};
  int requests_per_level = 0;  // 0: max(32, 2 x concurrency)
  double rate_per_s = 0;       // 0: closed loop
};

// Exit code: 0 when every level ran without failures, 1 otherwise.
int run_sweep(const CommonOptions& opts, const SweepOptions& sweep);

std::string render_sweep_markdown(const nlohmann::json& report);

}  // namespace kr::bench
