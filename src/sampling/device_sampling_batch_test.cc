// pack_device_sampling: the rows Backend::sample reads, their penalty entries
// and the one random value a drawing row takes from its generator.
#include "sampling/device_sampling_batch.h"

#include <gtest/gtest.h>

namespace kr {
namespace {

TEST(DeviceSamplingBatch, PacksRowsPenaltiesAndRandomBits) {
  SamplingParams greedy_rep, draw, too_many;
  greedy_rep.temperature = 0;
  greedy_rep.repetition_penalty = 1.5f;
  greedy_rep.logprobs = 3;
  draw.temperature = 0.8f;
  draw.top_k = 5;
  draw.top_p = 0.9f;
  draw.min_p = 0.1f;
  draw.presence_penalty = 0.5f;
  too_many.logprobs = kDeviceSamplingMaxTop + 1;
  const std::vector<int32_t> prompt = {4, 9, 4}, output = {7, 9, 7, 50000};
  std::mt19937_64 rng(5), default_rng(6);
  std::vector<SampleInput> rows(2);
  rows[0].params = &greedy_rep;
  rows[0].prompt_ids = prompt;
  rows[0].output_ids = output;
  rows[0].suppress_eos = true;
  rows[1].params = &draw;
  rows[1].prompt_ids = prompt;
  rows[1].output_ids = output;
  rows[1].rng = &rng;
  std::mt19937_64 rng_copy = rng, default_copy = default_rng;
  DeviceSamplingBatch b;
  ASSERT_TRUE(fits_device_sampling(rows));
  pack_device_sampling(rows, 1000, &default_rng, &b);
  ASSERT_EQ(b.rows.size(), 2u);
  // Greedy with repetition: prompt and output ids (50000 is outside the vocab), no draw.
  EXPECT_EQ(b.rows[0].suppress_eos, 1);
  EXPECT_EQ(b.rows[0].top_logprobs, 3);
  EXPECT_EQ(b.rows[0].repetition_penalty, 1.5f);
  EXPECT_EQ(b.rows[0].random_bits, 0u);
  EXPECT_EQ(std::vector<int32_t>(b.penalty_ids.begin() + b.rows[0].penalty_begin,
                                 b.penalty_ids.begin() + b.rows[0].penalty_end),
            (std::vector<int32_t>{4, 7, 9}));
  EXPECT_EQ(std::vector<int32_t>(b.penalty_counts.begin() + b.rows[0].penalty_begin,
                                 b.penalty_counts.begin() + b.rows[0].penalty_end),
            (std::vector<int32_t>{0, 2, 1}));
  // Presence only: output ids; one value from the row's own rng.
  EXPECT_EQ(b.rows[1].temperature, 0.8f);
  EXPECT_EQ(b.rows[1].top_k, 5);
  EXPECT_EQ(b.rows[1].top_p, 0.9f);
  EXPECT_EQ(b.rows[1].min_p, 0.1f);
  EXPECT_EQ(b.rows[1].top_logprobs, 0);
  EXPECT_EQ(std::vector<int32_t>(b.penalty_ids.begin() + b.rows[1].penalty_begin,
                                 b.penalty_ids.begin() + b.rows[1].penalty_end),
            (std::vector<int32_t>{7, 9}));
  EXPECT_EQ(b.rows[1].random_bits, rng_copy());
  EXPECT_EQ(rng(), rng_copy());              // exactly one value was taken
  EXPECT_EQ(default_rng(), default_copy());  // the default generator was not touched
  // Without its own rng a drawing row uses the default one.
  rows[1].rng = nullptr;
  pack_device_sampling(rows, 1000, &default_rng, &b);
  EXPECT_EQ(b.rows.size(), 2u);
  EXPECT_EQ(b.rows[1].random_bits, default_copy());
  // Too many logprobs: the rows do not fit the device.
  rows[0].params = &too_many;
  EXPECT_FALSE(fits_device_sampling(rows));
}

}  // namespace
}  // namespace kr
