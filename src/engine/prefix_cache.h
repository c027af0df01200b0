// PrefixCache: automatic prefix caching, the sequence side. The scheduler asks
// it, for each sequence it admits with nothing computed, for the longest prefix
// whose KV is cached, and the sequence's prefill starts after it.
// - Names: every full block of a sequence's tokens has a BlockHash (chained
//   from the request's cache_salt; engine/block_hash.h). A block is named in
//   the pool once it is full and computed (on_computed, after each step), so a
//   name always stands for valid KV; the partial last block is never named.
// - Match: the leading names found in the GPU pool, then those after them in
//   the host tier, at most (tokens - 1) / block_size blocks: the last token is
//   always computed, so the request gets its logits.
// - Claims: the full blocks a running sequence is going to compute are claimed
//   by it. A sequence whose next block (the first it would compute) is claimed
//   by another waits (PrefixMatch::wait) until that block is computed and named,
//   or the claim is dropped (the claimer is preempted or finished). So requests
//   racing for a prefix compute it once; the n choices of one request share the
//   prompt's blocks the same way.
// - Sharing is by reference count; a shared block is never written (a sequence
//   writes only at positions past its match, which ends at a block boundary).
//
// Threading: engine thread only.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "engine/block_hash.h"
#include "engine/kv_block_manager.h"
#include "engine/kv_host_tier.h"
#include "engine/sequence.h"

namespace kr {

struct PrefixMatch {
  int32_t gpu_blocks = 0;   // leading blocks found in the GPU pool
  int32_t host_blocks = 0;  // the blocks after those, found in the host tier
  bool wait = false;        // the next block is being computed by a running sequence
  int32_t blocks() const { return gpu_blocks + host_blocks; }
};

// Counted when a sequence is first admitted (not after a preemption), in
// tokens, as vLLM counts them: queries = prompt tokens, hits = tokens found.
struct PrefixCacheStats {
  int64_t queries = 0;
  int64_t hits = 0;
  int64_t host_hits = 0;  // of hits, those reloaded from the host tier
};

class PrefixCache {
 public:
  // `host` may be null (no host tier). Both must outlive the cache.
  PrefixCache(KvBlockManager* blocks, KvHostTier* host, BlockHasher hasher);

  // The longest cached prefix of `s`, which has nothing computed (waiting).
  PrefixMatch match(Sequence* s);
  // Admits `s` with match `m`: takes the GPU blocks, reloads the host ones into
  // fresh blocks, allocates blocks for `chunk` more tokens, sets num_computed to
  // the matched tokens, claims the full blocks it will compute, and counts the
  // query. False (nothing changed) when there are not enough free blocks.
  bool admit(Sequence* s, const PrefixMatch& m, int32_t chunk);
  // After a step that fed `s`: names its newly full and computed blocks and drops its claims on them.
  void on_computed(Sequence* s);
  // `s` leaves the running set (preempted, finished, cancelled): drops its claims.
  // Call before its blocks are freed.
  void release(Sequence* s);

  const PrefixCacheStats& stats() const { return stats_; }
  int32_t num_claims() const { return static_cast<int32_t>(claims_.size()); }

 private:
  void ensure_hashes(Sequence* s) const;

  KvBlockManager* blocks_;
  KvHostTier* host_;
  BlockHasher hasher_;
  std::unordered_map<BlockHash, RequestId, BlockHashHash> claims_;
  std::vector<int32_t> scratch_slots_;
  PrefixCacheStats stats_;
};

}  // namespace kr
