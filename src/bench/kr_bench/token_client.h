// One streamed /v1/completions request whose prompt is token ids, timed like
// chat_client.h (TTFT = send -> first chunk carrying a token). The server is
// asked for logprobs with return_tokens_as_token_ids, so the answer comes back
// as token ids ("token_id:N") that a multi-turn client appends to the next
// prompt as they are; usage gives prompt_tokens_details.cached_tokens. With
// top_logprobs >= 2 each token's margin over the runner-up comes back too
// (output_compare.h compares answers with it). The prefix-cache scenarios
// (prefix_bench.h) use it: caching depends only on token ids, so prompts built
// from ids behave the same with any weights.
// run_token_completion may be called from many threads at once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/kr_bench/chat_client.h"
#include "bench/kr_bench/http_client.h"

namespace kr::bench {

struct TokenCompletionRequest {
  std::string model;
  std::vector<int32_t> prompt_ids;
  int max_tokens = 16;
  std::string cache_salt;  // "" = none
  int top_logprobs = 0;    // the completions API's `logprobs`: top entries per token (2 gives the margins)
};

struct TokenCompletionResult {
  RequestResult timing;           // ok, ttft_ms, e2e_ms, output/prompt tokens, error
  std::vector<int32_t> output_ids;
  // Per output id when top_logprobs >= 2: logprob(top 1) - logprob(top 2), the margin by which a
  // temperature-0 choice won; NaN when the server sent fewer than two top entries.
  std::vector<double> margins;
  int64_t cached_tokens = -1;     // usage.prompt_tokens_details.cached_tokens; -1 when absent
};

// The JSON body sent for `req` (exposed for tests).
std::string token_completion_body(const TokenCompletionRequest& req);

TokenCompletionResult run_token_completion(const Endpoint& ep, const TokenCompletionRequest& req, int timeout_ms);

}  // namespace kr::bench
