// Sampler: picks one token from a row of raw float logits [V] on the CPU. It is
// the reference that defines the semantics; the device paths (StepSampler,
// backend/device_sampling.h) are checked against it.
//
// Order (as vLLM): logprobs from log_softmax of the RAW logits → repetition,
// presence and frequency penalties → EOS suppression → greedy argmax when
// is_greedy() → otherwise temperature, min-p, top-k, top-p → a draw from the
// request's std::mt19937_64.
//
// Threading: a Sampler keeps scratch buffers; use one per thread (the engine
// thread owns the runner's).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "sampling/sampled_token.h"
#include "sampling/sampling_params.h"

namespace kr {

// One row to sample: the request's parameters and the history its penalties read.
struct SampleInput {
  const SamplingParams* params = nullptr;  // required
  std::span<const int32_t> prompt_ids;     // repetition penalty (with output_ids)
  std::span<const int32_t> output_ids;     // all penalties
  bool suppress_eos = false;               // min_tokens not reached: the EOS ids get -inf
  std::mt19937_64* rng = nullptr;          // the request's generator; required unless greedy
};

class Sampler {
 public:
  // Returns the chosen id, its logprob and the top-`params->logprobs` (id, logprob),
  // all from log_softmax(logits). Logits containing NaN or ±Inf give
  // non_finite = true and id = -1 (the request must fail). `eos_ids` are the
  // ids in.suppress_eos suppresses.
  SampledToken sample(std::span<const float> logits, const SampleInput& in, std::span<const int32_t> eos_ids = {});

 private:
  void drop_top_p_tail(float top_p);

  std::vector<float> work_;      // [V] processed logits
  std::vector<int32_t> cand_;    // candidate ids
  std::vector<int32_t> counts_;  // [V] output-token counts (sparse reset)
};

// Greedy argmax with the lowest id on ties.
int32_t argmax_lowest_id(std::span<const float> v);

}  // namespace kr
