// Sampler: picks one token from a row of raw float logits [V] on the CPU.
//
// Order (as vLLM): logprobs from log_softmax of the RAW logits → repetition,
// presence and frequency penalties → EOS suppression → greedy argmax when
// temperature < 1e-5 → otherwise temperature, min-p, top-k, top-p → a draw
// from the request's std::mt19937_64.
//
// Threading: a Sampler keeps scratch buffers; use one per thread (the engine
// thread owns the runner's).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "engine/model_runner.h"
#include "engine/sampling_params.h"

namespace kr {

struct SampleInput {
  const SamplingParams* params = nullptr;  // required
  std::span<const int32_t> prompt_ids;     // repetition penalty (with output_ids)
  std::span<const int32_t> output_ids;     // all penalties
  bool suppress_eos = false;               // eos_ids get -inf
  std::span<const int32_t> eos_ids;
  std::mt19937_64* rng = nullptr;          // required unless greedy
};

class Sampler {
 public:
  // Returns the chosen id, its logprob and the top-`params->logprobs` (id, logprob),
  // all from log_softmax(logits). Logits containing NaN or ±Inf give
  // non_finite = true and id = -1 (the request must fail). seq_id is left 0.
  SampledToken sample(std::span<const float> logits, const SampleInput& in);

 private:
  void drop_top_p_tail(float top_p);

  std::vector<float> work_;      // [V] processed logits
  std::vector<int32_t> cand_;    // candidate ids
  std::vector<int32_t> counts_;  // [V] output-token counts (sparse reset)
};

// Greedy argmax with the lowest id on ties.
int32_t argmax_lowest_id(std::span<const float> v);

}  // namespace kr
