// Drives many requests against one endpoint: `concurrency` client threads
// (at most 256), each taking the next request from a shared counter (a closed
// loop, like vLLM's --max-concurrency). With rate_per_s > 0, request i may not
// start before its Poisson arrival time (exponential gaps, seeded), so the
// offered load is the rate, capped by the concurrency. Call from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bench/kr_bench/chat_client.h"

namespace kr::bench {

struct LoadOptions {
  int concurrency = 1;
  int requests = 1;
  double rate_per_s = 0;  // 0: send as fast as the clients free up
  uint64_t arrival_seed = 0;
  int timeout_ms = 600'000;
  std::string progress_label;  // empty: no progress output
};

struct LoadResult {
  std::vector<RequestResult> results;  // in request order
  int64_t start_ns = 0;
  double duration_s = 0;  // first send to last completion
};

// Arrival offsets in seconds from the start, cumulative exponential gaps of mean 1/rate.
std::vector<double> poisson_arrivals_s(int n, double rate_per_s, uint64_t seed);

// `make_request(i)` builds request i; it is called from client threads.
LoadResult run_load(const Endpoint& ep, const LoadOptions& opts,
                    const std::function<ChatRequest(int index)>& make_request);

}  // namespace kr::bench
