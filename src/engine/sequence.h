// Sequence: the engine thread's state of one request.
//
// Threading: engine thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "engine/block_hash.h"
#include "engine/kv_block_manager.h"
#include "engine/request.h"
#include "sampling/token_constraint.h"

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
  std::unique_ptr<TokenConstraint> constraint;  // request.grammar's matcher; null: free
  std::mt19937_64 rng;
  int64_t first_scheduled_ns = 0, first_token_ns = 0, last_token_ns = 0;
  int32_t num_preemptions = 0;
  int64_t scheduled_in_step = -1;  // Scheduler's step counter when last scheduled
  // Overlapped decode (engine.cc): launched steps of the runner that feed this
  // sequence and are not collected yet; a sequence that finishes meanwhile has its
  // final event published at once (`finished`) and leaves the scheduler, freeing its
  // blocks, only when none is left.
  int32_t launched_steps = 0;
  bool finished = false;
  // Prefix caching (engine/prefix_cache.h).
  std::vector<BlockHash> block_hashes;  // of the full blocks of `tokens` (block i: tokens [0, (i + 1) bs))
  BlockHash root_hash;                  // the chain's start: from request.cache_salt
  bool has_root_hash = false;
  int32_t num_named_blocks = 0;         // leading blocks of block_table offered a name
  int32_t claims_begin = 0, claims_end = 0;  // block_hashes[begin, end) this sequence may have claimed
  int32_t num_cached_tokens = -1;       // prompt tokens found in the cache at first admission; -1: not yet

  RequestId id() const { return request.id; }
  int32_t priority() const { return request.priority; }
  int64_t arrival_ns() const { return request.arrival_ns; }
  int32_t num_tokens() const { return static_cast<int32_t>(tokens.size()); }
  int32_t num_output_tokens() const { return num_tokens() - num_prompt_tokens; }
  int32_t num_uncomputed() const { return num_tokens() - num_computed; }
};

}  // namespace kr
