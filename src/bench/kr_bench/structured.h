// `kr-bench structured`: the cost of structured outputs as a client sees it.
// One server (ours, started with the hybrid configuration, or --url), the
// same requests (the built-in questions, streamed, ignore_eos so that every
// request produces exactly max_tokens tokens) in several scenarios that
// differ only in their constraint:
//   free         no constraint (the baseline);
//   json_schema  response_format json_schema: an API-shaped schema (nested
//                objects, an array of objects, enums, bounded strings,
//                numbers with bounds, a date format);
//   json_object  response_format json_object;
//   regex        guided_regex of a long bounded pattern.
// After a constrained output completes, EOS is the only token its grammar
// allows, so the rest of the max_tokens are still masked steps.
// Each scenario runs `rounds` times, interleaved (free, json_schema, ...,
// free, json_schema, ...), at one concurrency; the report gives output tokens
// per second, TTFT and ITL per scenario (median over rounds), and each
// constrained scenario's throughput and TTFT as a fraction of free's
// (throughput_vs_free = its tok/s / free's; ttft_vs_free = free's TTFT p50 /
// its TTFT p50; both 1.0 when free). Writes structured.json (and prints a
// summary). Call from the main thread.
#pragma once

#include <string>
#include <vector>

#include "bench/kr_bench/target.h"

namespace kr::bench {

struct StructuredOptions {
  int concurrency = 64;
  int requests = 0;  // per scenario and round; 0: 2 x concurrency
  int rounds = 2;
  std::vector<std::string> scenarios = {"free", "json_schema", "json_object", "regex"};
};

// The body fields of a scenario ("" for free); InvalidArgument for an unknown name.
StatusOr<std::string> structured_scenario_fields(const std::string& name);

// Exit code: 0 when every request succeeded, 1 otherwise, 2 on bad options.
int run_structured(const CommonOptions& opts, const StructuredOptions& so);

}  // namespace kr::bench
