#include "engine/kv_block_manager.h"

#include "base/check.h"

namespace kr {

KvBlockManager::KvBlockManager(int32_t num_blocks, int32_t block_size)
    : block_size_(block_size), refcount_(static_cast<size_t>(num_blocks), 0) {
  KR_CHECK(num_blocks >= 0 && block_size > 0);
  free_.reserve(static_cast<size_t>(num_blocks));
  // Stack order: block 0 is handed out first (easier to read in tests).
  for (int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

double KvBlockManager::usage() const {
  if (refcount_.empty()) return 0.0;
  return 1.0 - static_cast<double>(free_.size()) / static_cast<double>(refcount_.size());
}

int32_t KvBlockManager::blocks_needed(const BlockTable& table, int64_t total_tokens) const {
  const int64_t want = (total_tokens + block_size_ - 1) / block_size_;
  const int64_t have = static_cast<int64_t>(table.size());
  return want > have ? static_cast<int32_t>(want - have) : 0;
}

bool KvBlockManager::can_allocate(const BlockTable& table, int64_t total_tokens) const {
  return blocks_needed(table, total_tokens) <= num_free_blocks();
}

bool KvBlockManager::allocate(BlockTable* table, int64_t total_tokens) {
  const int32_t n = blocks_needed(*table, total_tokens);
  if (n > num_free_blocks()) return false;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t b = free_.back();
    free_.pop_back();
    KR_CHECK(refcount_[static_cast<size_t>(b)] == 0);
    refcount_[static_cast<size_t>(b)] = 1;
    table->push_back(b);
  }
  return true;
}

int64_t KvBlockManager::tokens_that_fit(const BlockTable& table, int64_t tokens_in_cache) const {
  const int64_t capacity = (static_cast<int64_t>(table.size()) + num_free_blocks()) * block_size_;
  return capacity > tokens_in_cache ? capacity - tokens_in_cache : 0;
}

void KvBlockManager::free(BlockTable* table) {
  for (const int32_t b : *table) {
    int32_t& rc = refcount_[static_cast<size_t>(b)];
    KR_CHECK(rc > 0);
    if (--rc == 0) free_.push_back(b);
  }
  table->clear();
}

void KvBlockManager::share(int32_t block) {
  KR_CHECK(refcount_[static_cast<size_t>(block)] > 0);
  ++refcount_[static_cast<size_t>(block)];
}

}  // namespace kr
