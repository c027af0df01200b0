// Tests of the model only: the StepMetadata of one sequence whose KV blocks are
// 0, 1, 2, ... (block b holds positions [b * bs, (b + 1) * bs)), feeding tokens
// [start, start + n) of it.
#pragma once

#include <cstdint>

#include "backend/backend.h"

namespace kr {

inline StepMetadata single_seq_step(int32_t start, int32_t n, int32_t block_size) {
  StepMetadata m;
  m.num_tokens = n;
  m.num_seqs = 1;
  m.block_size = block_size;
  const int32_t ctx = start + n;
  m.max_blocks_per_seq = (ctx + block_size - 1) / block_size;
  m.max_context_len = ctx;
  m.query_start = {0, n};
  m.context_lens = {ctx};
  for (int32_t b = 0; b < m.max_blocks_per_seq; ++b) m.block_tables.push_back(b);
  for (int32_t p = start; p < ctx; ++p) {
    m.positions.push_back(p);
    m.slot_mapping.push_back(p);
  }
  return m;
}

}  // namespace kr
