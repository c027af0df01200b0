#include "sampling/device_sampling_batch.h"

#include <algorithm>

#include "base/check.h"

namespace kr {

void append_device_row(const SamplingParams& p, bool suppress_eos, std::span<const int32_t> prompt_ids,
                       std::span<const int32_t> output_ids, int32_t vocab, DeviceSamplingBatch* batch) {
  DeviceSamplingRow r;
  r.temperature = p.temperature;
  r.top_p = p.top_p;
  r.top_k = p.top_k;
  r.min_p = p.min_p;
  r.repetition_penalty = p.repetition_penalty;
  r.presence_penalty = p.presence_penalty;
  r.frequency_penalty = p.frequency_penalty;
  r.suppress_eos = suppress_eos ? 1 : 0;
  r.top_logprobs = std::max(0, p.logprobs);
  if (has_penalties(p)) {
    const auto range = append_penalty_entries(prompt_ids.data(), prompt_ids.size(), output_ids.data(),
                                              output_ids.size(), p.repetition_penalty != 1.0f, vocab,
                                              &batch->penalty_ids, &batch->penalty_counts, &batch->scratch);
    r.penalty_begin = range.first;
    r.penalty_end = range.second;
  }
  batch->rows.push_back(r);
}

bool fits_device_sampling(std::span<const SampleInput> rows) {
  return std::all_of(rows.begin(), rows.end(),
                     [](const SampleInput& in) { return in.params->logprobs <= kDeviceSamplingMaxTop; });
}

void pack_device_sampling(std::span<const SampleInput> rows, int32_t vocab, std::mt19937_64* default_rng,
                          DeviceSamplingBatch* batch) {
  KR_CHECK(fits_device_sampling(rows));
  batch->rows.clear();
  batch->penalty_ids.clear();
  batch->penalty_counts.clear();
  for (const SampleInput& in : rows) {
    append_device_row(*in.params, in.suppress_eos, in.prompt_ids, in.output_ids, vocab, batch);
    if (!is_greedy(*in.params)) batch->rows.back().random_bits = (*(in.rng != nullptr ? in.rng : default_rng))();
  }
}

}  // namespace kr
