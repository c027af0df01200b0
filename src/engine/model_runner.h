// ModelRunner: what the engine asks of a model each step. One forward over a
// batch of sequences (prefill chunks and single decode tokens mixed), then one
// sampled token for every sequence that asks for one.
//
// Threading: engine thread only (it owns the backend and the KV cache).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"
#include "sampling/sampled_token.h"
#include "sampling/sampler.h"

namespace kr {

struct SeqStep {
  int64_t seq_id = 0;
  std::span<const int32_t> tokens;       // new tokens fed this step (prefill chunk or 1 decode token)
  int32_t start_pos = 0;                 // tokens already in the KV cache = position of tokens[0]
  std::span<const int32_t> block_table;  // KV blocks covering [0, start_pos + tokens.size())
  bool sample = false;                   // produce a token after the last new token
  SampleInput sampling;                  // when sample: params, history, the request's rng
};

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  virtual int32_t block_size() const = 0;     // tokens per KV block
  virtual int32_t num_kv_blocks() const = 0;  // blocks in the paged cache
  virtual int32_t max_model_len() const = 0;  // context length limit
  virtual std::span<const int32_t> eos_ids() const = 0;
  // Runs one step. `out`, empty on entry, gets one SampledToken per
  // SeqStep with sample == true, in order.
  virtual Status step(std::span<const SeqStep> seqs, std::vector<SampledToken>* out) = 0;
};

}  // namespace kr
