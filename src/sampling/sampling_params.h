// Sampling parameters of one request, already validated by the caller (the
// server validates ranges and returns 400 before anything reaches the engine).
//
// Threading: plain values; any thread.
#pragma once

#include <cstdint>
#include <optional>

#include "backend/device_sampling.h"

namespace kr {

struct SamplingParams {
  float temperature = 1.0f;         // below kGreedyTemperature = greedy
  float top_p = 1.0f;               // (0, 1]
  int32_t top_k = 0;                // 0 or -1 = off
  float min_p = 0.0f;               // [0, 1]
  float repetition_penalty = 1.0f;  // > 0; HF semantics over prompt + output tokens
  float presence_penalty = 0.0f;    // [-2, 2]; OpenAI semantics over output tokens
  float frequency_penalty = 0.0f;   // [-2, 2]; OpenAI semantics over output tokens
  std::optional<uint64_t> seed;     // same seed, same output
  int32_t logprobs = -1;            // -1: none; k >= 0: chosen token's logprob and top k
};

// Greedy (argmax, no draw): temperature below kGreedyTemperature (vLLM's
// threshold; defined beside DeviceSamplingRow so that the device kernels use it too).
inline bool is_greedy(const SamplingParams& p) { return p.temperature < kGreedyTemperature; }

// Penalties that need the row's history (prompt and output ids).
inline bool has_penalties(const SamplingParams& p) {
  return p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
}

}  // namespace kr
