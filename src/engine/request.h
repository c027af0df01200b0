// Request and event types that cross between the HTTP threads and the engine
// thread. Plain structs: no JSON below the server layer.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "base/request_types.h"
#include "base/status.h"
#include "sampling/sampled_token.h"
#include "sampling/sampling_params.h"

namespace kr {

// Lower value = served first. The server maps "urgent"/"default"/"background"
// to these; integers from the request are used as given.
enum Priority : int32_t { kPriorityUrgent = -1, kPriorityDefault = 0, kPriorityBackground = 1 };

// Delivered by the engine thread. The callback must not block: push it into a
// queue and return.
struct TokenEvent {
  RequestId request_id = 0;
  std::vector<SampledToken> tokens;    // new tokens since the last event (may be empty); top when logprobs were asked for
  bool finished = false;
  FinishReason finish_reason = FinishReason::kNone;
  Status error;                        // set when finish_reason == kError
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;       // total so far
  // Timings, filled on the finishing event (seconds).
  double queue_time_s = 0, ttft_s = 0, e2e_s = 0;
};

// The one context-length check: prompt + completion must fit max_model_len.
// OutOfRange with the OpenAI-style message otherwise. Used at admission
// (server/prompt.h) and again by Engine::submit, against the same limit.
Status check_context_length(int64_t prompt_tokens, int64_t max_tokens, int64_t max_model_len);

struct GenerationRequest {
  RequestId id = 0;                    // unique, chosen by the submitter
  std::vector<int32_t> prompt_ids;
  SamplingParams sampling;
  int32_t max_tokens = 16;             // >= 1; prompt + max_tokens <= max_model_len
  int32_t min_tokens = 0;
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids; // finish with kStop when generated (besides EOS)
  int32_t priority = kPriorityDefault;
  int64_t arrival_ns = 0;              // on the engine's clock; 0: Engine::submit sets it to now
  std::function<void(TokenEvent&&)> on_event;
};

}  // namespace kr
