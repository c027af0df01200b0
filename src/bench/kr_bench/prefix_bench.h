// The prefix-cache scenarios of kr-bench, each run side by side with caching
// off and on (the server started once per configuration: KR_PREFIX_CACHING
// off / on, and "host" = on with a host tier of --host-tier-gb):
// - multiturn: S concurrent sessions x T turns over one shared system prompt;
//   each turn sends the whole conversation so far (system prompt, every user
//   message, every answer as the token ids the server returned) plus a new
//   user message. Reports TTFT p50/p99 per turn index, cached tokens, and the
//   throughput of the whole run.
// - shared-prefix: one long document, many questions about it: a cold request,
//   follow-ups one at a time (TTFT of a follow-up with the document as history),
//   then the rest at a concurrency. With a "host" configuration, cycles of
//   "push the document out of the GPU pool with filler prompts, ask again": the
//   TTFT of a host-tier hit next to a GPU hit and a recompute, and the reload's
//   effective GB/s.
// Prompts are token ids drawn from a seeded generator (completions API, token
// ids in and out; token_client.h), so a run is the same on any weights: caching
// depends on token ids only. multiturn also compares each configuration's
// answers with cache-off's (output_compare.h; output_comparison in the JSON, a
// line on stdout, exit status 1 on a divergence above the margin). Writes <scenario>.json and <scenario>.md into
// opts.out_dir. Call from the main thread.
#pragma once

#include <string>
#include <vector>

#include "bench/kr_bench/target.h"

namespace kr::bench {

struct PrefixBenchOptions {
  std::vector<std::string> caches = {"off", "on"};  // off | on | host
  double host_tier_gb = 0;     // the host configuration's --kv-offload-gb
  int32_t token_lo = 1000, token_hi = 100000;  // prompt token ids are drawn from [lo, hi)
  // multiturn
  int sessions = 8;
  int turns = 4;
  int system_tokens = 2000;
  int user_tokens = 100;       // each user message: 90-110% of this
  // shared-prefix
  int document_tokens = 8000;
  int question_tokens = 64;
  int questions = 32;          // asked at `concurrency` after the cold one
  int concurrency = 8;
  int followups_alone = 5;     // follow-ups sent one at a time (TTFT without load)
  int host_cycles = 3;         // host configuration: evict-and-ask cycles
};

int run_multiturn(const CommonOptions& opts, const PrefixBenchOptions& p);
int run_shared_prefix(const CommonOptions& opts, const PrefixBenchOptions& p);

}  // namespace kr::bench
