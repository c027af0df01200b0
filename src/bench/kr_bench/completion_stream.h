// One streamed POST /v1/completions with a prompt of token ids (no tokenizer on
// either side), timing every chunk that carries tokens. Each token's chunk is
// counted through its logprobs (the request asks for "logprobs": 0), so a token
// whose text is empty (a special token, half a UTF-8 character) still marks its
// arrival. The caller may stop reading at any chunk (the connection closes).
// Reentrant: any thread may run its own stream.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bench/kr_bench/http_client.h"

namespace kr::bench {

struct CompletionRequest {
  std::string model;
  std::vector<int32_t> prompt_ids;
  int max_tokens = 1;
  bool ignore_eos = true;
};

struct TokenChunk {
  int64_t at_ns = 0;  // steady clock at arrival
  int tokens = 0;     // tokens it carries
};

struct CompletionResult {
  bool ok = false;
  std::string error;
  int64_t start_ns = 0;  // steady clock at send
  int64_t end_ns = 0;
  std::vector<TokenChunk> chunks;  // in arrival order
  int64_t prompt_tokens = 0;       // from usage; 0 when absent
  int64_t completion_tokens = 0;   // from usage, else the tokens of the chunks
  double ttft_ms() const { return chunks.empty() ? 0.0 : static_cast<double>(chunks[0].at_ns - start_ns) / 1e6; }
};

// The JSON body (exposed for tests): greedy, streamed with usage, logprobs 0.
std::string completion_request_body(const CompletionRequest& req);

// on_chunk(chunk, tokens so far): return false to stop reading (the result is
// still ok). Called on the calling thread.
CompletionResult run_completion_stream(const Endpoint& ep, const CompletionRequest& req, int timeout_ms,
                                       const std::function<bool(const TokenChunk&, int64_t)>& on_chunk = {});

}  // namespace kr::bench
