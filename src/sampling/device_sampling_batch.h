// DeviceSamplingBatch: Backend::sample's inputs for the rows of one step, packed
// on the host from the rows' SampleInputs (parameters, penalty entries, one
// random value per drawing row).
//
// Threading: plain data and pure functions; the engine thread packs its own batch.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "backend/device_sampling.h"
#include "sampling/sampler.h"
#include "sampling/sampling_params.h"

namespace kr {

struct DeviceSamplingBatch {
  std::vector<DeviceSamplingRow> rows;  // [R] one per row, in order
  std::vector<int32_t> penalty_ids;     // [P] per-row ranges, ids ascending
  std::vector<int32_t> penalty_counts;  // [P] occurrences in the row's output ids
  std::vector<int32_t> scratch;
};

// Appends one row for params `p` to batch->rows (random_bits 0) and the penalty
// entries of prompt_ids/output_ids to the batch's penalty arrays.
void append_device_row(const SamplingParams& p, bool suppress_eos, std::span<const int32_t> prompt_ids,
                       std::span<const int32_t> output_ids, int32_t vocab, DeviceSamplingBatch* batch);

// True when every row fits Backend::sample (at most kDeviceSamplingMaxTop logprobs).
bool fits_device_sampling(std::span<const SampleInput> rows);

// Packs `rows` into `batch` (cleared first). Rows that draw (!is_greedy) take
// one 64-bit value from their rng (`default_rng` when they have none), as the
// host Sampler takes one per draw, so a seeded request is reproducible.
// Penalty entries are packed only for rows whose penalties are on. The rows
// must fit (fits_device_sampling).
void pack_device_sampling(std::span<const SampleInput> rows, int32_t vocab, std::mt19937_64* default_rng,
                          DeviceSamplingBatch* batch);

}  // namespace kr
