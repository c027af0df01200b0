// Sampling parameters of one request, already validated by the caller (the
// server validates ranges and returns 400 before anything reaches the engine).
#pragma once

#include <cstdint>
#include <optional>

namespace kr {

struct SamplingParams {
  float temperature = 1.0f;         // 0 = greedy
  float top_p = 1.0f;               // (0, 1]
  int32_t top_k = 0;                // 0 or -1 = off
  float min_p = 0.0f;               // [0, 1]
  float repetition_penalty = 1.0f;  // > 0; HF semantics over prompt + output tokens
  float presence_penalty = 0.0f;    // [-2, 2]; OpenAI semantics over output tokens
  float frequency_penalty = 0.0f;   // [-2, 2]; OpenAI semantics over output tokens
  std::optional<uint64_t> seed;     // same seed, same output
  int32_t logprobs = -1;            // -1: none; k >= 0: chosen token's logprob and top k
};

}  // namespace kr
