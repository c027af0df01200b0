// KvBlockManager: the paged KV cache's bookkeeping. Fixed-size blocks, a free
// list, per-block reference counts (so a future prefix cache can share blocks),
// per-sequence block tables owned by the caller.
//
// Threading: engine thread only (no locks); num_free_blocks() is also
// published through an atomic by the engine for other threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kr {

using BlockTable = std::vector<int32_t>;  // block ids, position p lives in table[p / block_size]

class KvBlockManager {
 public:
  KvBlockManager(int32_t num_blocks, int32_t block_size);

  int32_t block_size() const { return block_size_; }
  int32_t num_blocks() const { return static_cast<int32_t>(refcount_.size()); }
  int32_t num_free_blocks() const { return static_cast<int32_t>(free_.size()); }
  double usage() const;  // used blocks / all blocks, in [0, 1]

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
  // Drops one reference to every block of `table` and clears it; blocks whose
  // count reaches zero return to the free list.
  void free(BlockTable* table);
  // Another reference to a used block (prefix sharing).
  void share(int32_t block);
  int32_t refcount(int32_t block) const { return refcount_[static_cast<size_t>(block)]; }

 private:
  int32_t block_size_;
  std::vector<int32_t> refcount_;  // [num_blocks]
  std::vector<int32_t> free_;      // stack of free block ids
};

}  // namespace kr
