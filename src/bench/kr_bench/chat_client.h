// One streamed chat completion against an OpenAI-compatible server, timed as a
// client sees it, with the definitions of vLLM's `bench serve`:
//   TTFT  send -> first chunk with non-empty content
//   ITL   gaps between consecutive content chunks
//   TPOT  (E2E - TTFT) / (output tokens - 1)
//   E2E   send -> end of the stream
// Output tokens come from the final usage chunk (stream_options.include_usage)
// when the server sends one, otherwise from the number of content chunks.
// run_chat_request may be called from many threads at once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bench/kr_bench/http_client.h"

namespace kr::bench {

struct ChatRequest {
  std::string model;
  std::string prompt;  // sent as one user message
  int max_tokens = 50;
  double temperature = 0.7;
  std::optional<int64_t> seed;
  bool ignore_eos = true;
  std::string extra_json;  // a JSON object whose fields are added to the body ("" for none)
};

struct RequestResult {
  bool ok = false;
  std::string error;      // why it failed; empty when ok
  int http_status = 0;
  int64_t start_ns = 0;   // steady clock at send
  double ttft_ms = 0;
  double e2e_ms = 0;
  std::vector<double> itl_ms;
  int64_t output_tokens = 0;
  int64_t content_chunks = 0;
  bool tokens_from_usage = false;
  int64_t prompt_tokens = 0;  // from usage; 0 when absent
  std::string finish_reason;
  std::string text;

  // 0 when fewer than 2 tokens.
  double tpot_ms() const;
  // Output tokens per second of this request's E2E latency.
  double tokens_per_s() const;
};

// The JSON body sent for `req` (exposed for tests).
std::string chat_request_body(const ChatRequest& req);

RequestResult run_chat_request(const Endpoint& ep, const ChatRequest& req, int timeout_ms);

}  // namespace kr::bench
