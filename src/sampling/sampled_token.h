// SampledToken: what sampling one row of logits gives. The engine passes the
// same value on to the request's events (TokenEvent::tokens).
//
// Threading: plain values; any thread.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace kr {

struct SampledToken {
  int32_t id = -1;                              // -1 when non_finite
  float logprob = 0.0f;                         // log_softmax of the raw logits at id
  std::vector<std::pair<int32_t, float>> top;   // top-k (id, logprob), k = SamplingParams::logprobs
  bool non_finite = false;                      // the logits held NaN or ±Inf: the request must fail
};

}  // namespace kr
