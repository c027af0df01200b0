// Device sampling: the per-row parameters and results of Backend::sample, and
// the host-side packing of penalty tokens into the arrays it reads.
//
// The semantics are the CPU Sampler's (sampling/sampler.h), which is the
// reference: log_softmax of the RAW logits for the chosen id and the top
// logprobs; repetition penalty (HF, over distinct prompt + output ids),
// presence/frequency (OpenAI, over output ids with counts), EOS suppression,
// then greedy argmax (temperature < kGreedyTemperature) or temperature, min-p, top-k, top-p
// and a draw. Known differences (documented, measure-zero in practice): tokens
// tied exactly at the top-p threshold are kept whole (the CPU may split them by
// id); the draw uses the row's random_bits instead of the request's generator.
//
// This header is also compiled by nvcc as C++17 (cuda_sampling.cu): keep it
// free of C++20 library types.
//
// Threading: plain data and pure functions; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace kr {

// Most top logprobs a device row returns (OpenAI's limit).
inline constexpr int32_t kDeviceSamplingMaxTop = 20;

// A temperature below this means greedy (vLLM's threshold). The one definition,
// used by the CUDA kernels and by the sampling module (SamplingParams).
inline constexpr float kGreedyTemperature = 1e-5f;

// Parameters of one logits row.
struct DeviceSamplingRow {
  float temperature = 1.0f;  // < kGreedyTemperature: greedy (lowest id on ties)
  float top_p = 1.0f;        // (0, 1]; 1 = off
  int32_t top_k = 0;         // <= 0 = off
  float min_p = 0.0f;        // [0, 1]; 0 = off
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int32_t suppress_eos = 0;  // nonzero: every id of eos_ids gets -inf
  int32_t top_logprobs = 0;  // [0, kDeviceSamplingMaxTop]
  // This row's penalty entries are [penalty_begin, penalty_end) of the penalty
  // arrays: ids strictly ascending, each with its count in the output ids.
  int32_t penalty_begin = 0;
  int32_t penalty_end = 0;
  uint64_t random_bits = 0;  // one draw's randomness (one output per value)
};

struct DeviceSampleResult {
  int32_t id = -1;             // -1 when non_finite
  float logprob = 0.0f;        // log_softmax(raw logits)[id]
  int32_t non_finite = 0;      // nonzero: the row held NaN or ±Inf
  int32_t num_top = 0;         // = row.top_logprobs (0 when non_finite)
  int32_t top_ids[kDeviceSamplingMaxTop] = {};   // by logprob descending, lowest id first on ties
  float top_logprobs[kDeviceSamplingMaxTop] = {};
};

// Appends one row's penalty entries to `ids` / `counts` and returns its
// [begin, end) range in them. Entries are the distinct ids in [0, vocab) of
// `output` (with their counts) and, when `with_prompt` (repetition penalty
// active), of `prompt` too (count 0 unless also in output); ascending by id.
// `scratch` is reused memory.
std::pair<int32_t, int32_t> append_penalty_entries(const int32_t* prompt, size_t prompt_len, const int32_t* output,
                                                   size_t output_len, bool with_prompt, int32_t vocab,
                                                   std::vector<int32_t>* ids, std::vector<int32_t>* counts,
                                                   std::vector<int32_t>* scratch);

}  // namespace kr
