// KvBlockManager: the paged KV cache's bookkeeping. Fixed-size blocks, per-block
// reference counts, per-sequence block tables owned by the caller, and the block
// side of the prefix cache (engine/prefix_cache.h drives it):
// - a full, computed block may be named by its BlockHash (engine/block_hash.h);
//   a named block is immutable and may be shared by any number of tables;
// - a block whose count drops to zero goes back to the free pool: unnamed ones
//   to a stack, named ones to an LRU list, where they stay findable by name and
//   can be taken again (count 0 -> 1) until the pool needs them;
// - allocation takes unnamed free blocks first, then evicts the least recently
//   freed named block (its name is dropped; the eviction listener, the host
//   tier, may copy it out first).
// Both kinds count as free: num_free_blocks() is what allocation can get.
//
// Threading: engine thread only (no locks); num_free_blocks() is also
// published through an atomic by the engine for other threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/block_hash.h"
#include "engine/lru_list.h"

namespace kr {

using BlockTable = std::vector<int32_t>;  // block ids, position p lives in table[p / block_size]

// Told when a free named block is about to be reused for other data.
class KvEvictionListener {
 public:
  virtual ~KvEvictionListener() = default;
  virtual void on_evict(int32_t block, const BlockHash& hash) = 0;
};

class KvBlockManager {
 public:
  KvBlockManager(int32_t num_blocks, int32_t block_size);

  int32_t block_size() const { return block_size_; }
  int32_t num_blocks() const { return static_cast<int32_t>(refcount_.size()); }
  // Unnamed free blocks plus free named (cached) ones: what allocation can take.
  int32_t num_free_blocks() const { return static_cast<int32_t>(free_.size()) + lru_.size(); }
  double usage() const;  // referenced blocks / all blocks, in [0, 1]

  // Blocks to add to `table` so that it covers `total_tokens` positions.
  int32_t blocks_needed(const BlockTable& table, int64_t total_tokens) const;
  bool can_allocate(const BlockTable& table, int64_t total_tokens) const;
  // Grows `table` to cover `total_tokens`; false (and nothing changed) when
  // there are not enough free blocks.
  bool allocate(BlockTable* table, int64_t total_tokens);
  // One more position after the `tokens_in_cache` already covered.
  bool append_slot(BlockTable* table, int64_t tokens_in_cache) {
    return allocate(table, tokens_in_cache + 1);
  }
  // How many more tokens fit in `table` plus all free blocks.
  int64_t tokens_that_fit(const BlockTable& table, int64_t tokens_in_cache) const;
  // Drops one reference to every block of `table` and clears it. Blocks whose
  // count reaches zero return to the free pool, the table's last block first,
  // so that a named sequence's tail is evicted before its head (the shared part).
  void free(BlockTable* table);
  // Another reference to a block in use, or to a free named block (which leaves the free pool).
  void share(int32_t block);
  int32_t refcount(int32_t block) const { return refcount_[static_cast<size_t>(block)]; }

  // ---- names (prefix caching) ----
  // The block named `hash`, or -1.
  int32_t find(const BlockHash& hash) const;
  // Names a referenced, full and computed block. False (the block stays
  // unnamed) when another block already has the name, or this one has one.
  bool name(int32_t block, const BlockHash& hash);
  bool named(int32_t block) const { return named_[static_cast<size_t>(block)] != 0; }
  const BlockHash& hash_of(int32_t block) const { return hash_[static_cast<size_t>(block)]; }
  int32_t num_named_blocks() const { return static_cast<int32_t>(by_hash_.size()); }
  int32_t num_free_named_blocks() const { return lru_.size(); }
  // The next `n` (at most) blocks eviction would take, oldest first.
  void eviction_candidates(int32_t n, std::vector<int32_t>* out) const;
  void set_eviction_listener(KvEvictionListener* listener) { listener_ = listener; }

  // For tests: "" when the counts, the free pool and the names agree, else what does not.
  std::string check_consistency() const;

 private:
  int32_t take_free_block();  // unnamed first, else evicts the LRU named block

  int32_t block_size_;
  std::vector<int32_t> refcount_;  // [num_blocks]
  std::vector<int32_t> free_;      // stack of free unnamed block ids
  LruList lru_;                    // free named blocks, least recently freed first
  std::vector<BlockHash> hash_;    // [num_blocks] the name, where named_
  std::vector<uint8_t> named_;     // [num_blocks]
  std::unordered_map<BlockHash, int32_t, BlockHashHash> by_hash_;
  KvEvictionListener* listener_ = nullptr;
};

}  // namespace kr
