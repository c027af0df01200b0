// Sequence: the engine thread's state of one request.
//
// Threading: engine thread only.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "engine/kv_block_manager.h"
#include "engine/request.h"

namespace kr {

// Ordered: a sequence only moves forward, except kRunning <-> kPreempted.
enum class SeqState : int32_t { kWaiting = 0, kRunning = 1, kPreempted = 2, kFinished = 3 };

struct Sequence {
  GenerationRequest request;
  SeqState state = SeqState::kWaiting;
  // prompt + generated tokens. Positions [0, num_computed) are in the KV cache;
  // the rest is fed in the next steps (prefill chunks, or the last sampled
  // token as a decode). After a preemption num_computed is 0 again, so the
  // generated tokens are recomputed with the prompt.
  std::vector<int32_t> tokens;
  int32_t num_prompt_tokens = 0;
  int32_t num_computed = 0;
  BlockTable block_table;
  std::vector<SampledToken> pending;  // sampled, not yet published
  std::mt19937_64 rng;
  int64_t first_scheduled_ns = 0, first_token_ns = 0, last_token_ns = 0;
  int32_t num_preemptions = 0;
  int64_t scheduled_in_step = -1;  // Scheduler's step counter when last scheduled

  RequestId id() const { return request.id; }
  int32_t priority() const { return request.priority; }
  int64_t arrival_ns() const { return request.arrival_ns; }
  int32_t num_tokens() const { return static_cast<int32_t>(tokens.size()); }
  int32_t num_output_tokens() const { return num_tokens() - num_prompt_tokens; }
  int32_t num_uncomputed() const { return num_tokens() - num_computed; }
};

}  // namespace kr
