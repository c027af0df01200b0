#include "engine/kv_block_manager.h"

#include <algorithm>

#include "base/check.h"

namespace kr {

KvBlockManager::KvBlockManager(int32_t num_blocks, int32_t block_size)
    : block_size_(block_size),
      refcount_(static_cast<size_t>(num_blocks), 0),
      lru_(num_blocks),
      hash_(static_cast<size_t>(num_blocks)),
      named_(static_cast<size_t>(num_blocks), 0) {
  KR_CHECK(num_blocks >= 0 && block_size > 0);
  free_.reserve(static_cast<size_t>(num_blocks));
  // Stack order: block 0 is handed out first (easier to read in tests).
  for (int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

double KvBlockManager::usage() const {
  if (refcount_.empty()) return 0.0;
  return 1.0 - static_cast<double>(num_free_blocks()) / static_cast<double>(refcount_.size());
}

int32_t KvBlockManager::blocks_needed(const BlockTable& table, int64_t total_tokens) const {
  const int64_t want = (total_tokens + block_size_ - 1) / block_size_;
  const int64_t have = static_cast<int64_t>(table.size());
  return want > have ? static_cast<int32_t>(want - have) : 0;
}

bool KvBlockManager::can_allocate(const BlockTable& table, int64_t total_tokens) const {
  return blocks_needed(table, total_tokens) <= num_free_blocks();
}

int32_t KvBlockManager::take_free_block() {
  if (!free_.empty()) {
    const int32_t b = free_.back();
    free_.pop_back();
    return b;
  }
  const int32_t b = lru_.pop_front();
  const size_t i = static_cast<size_t>(b);
  if (listener_ != nullptr) listener_->on_evict(b, hash_[i]);
  by_hash_.erase(hash_[i]);
  named_[i] = 0;
  return b;
}

bool KvBlockManager::allocate(BlockTable* table, int64_t total_tokens) {
  const int32_t n = blocks_needed(*table, total_tokens);
  if (n > num_free_blocks()) return false;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t b = take_free_block();
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
  for (auto it = table->rbegin(); it != table->rend(); ++it) {
    const int32_t b = *it;
    int32_t& rc = refcount_[static_cast<size_t>(b)];
    KR_CHECK(rc > 0);
    if (--rc > 0) continue;
    if (named(b)) {
      lru_.push_back(b);
    } else {
      free_.push_back(b);
    }
  }
  table->clear();
}

void KvBlockManager::share(int32_t block) {
  int32_t& rc = refcount_[static_cast<size_t>(block)];
  if (rc == 0) {
    KR_CHECK_MSG(named(block), "share: a free block without a name");
    lru_.remove(block);
  }
  ++rc;
}

int32_t KvBlockManager::find(const BlockHash& hash) const {
  auto it = by_hash_.find(hash);
  return it == by_hash_.end() ? -1 : it->second;
}

bool KvBlockManager::name(int32_t block, const BlockHash& hash) {
  const size_t i = static_cast<size_t>(block);
  KR_CHECK(refcount_[i] > 0);
  if (named_[i] != 0) return false;
  if (!by_hash_.emplace(hash, block).second) return false;
  hash_[i] = hash;
  named_[i] = 1;
  return true;
}

void KvBlockManager::eviction_candidates(int32_t n, std::vector<int32_t>* out) const {
  out->clear();
  if (lru_.empty()) return;
  for (int32_t b = lru_.front(); b >= 0 && static_cast<int32_t>(out->size()) < n; b = lru_.after(b)) out->push_back(b);
}

std::string KvBlockManager::check_consistency() const {
  std::vector<uint8_t> in_free(refcount_.size(), 0);
  for (int32_t b : free_) {
    if (in_free[static_cast<size_t>(b)]++ != 0) return "block " + std::to_string(b) + " is twice on the free stack";
    if (named(b)) return "named block " + std::to_string(b) + " is on the unnamed free stack";
  }
  int32_t named_count = 0;
  for (size_t i = 0; i < refcount_.size(); ++i) {
    const int32_t b = static_cast<int32_t>(i);
    if (refcount_[i] < 0) return "block " + std::to_string(b) + " has a negative count";
    const bool free_named = lru_.contains(b);
    if (free_named && in_free[i] != 0) return "block " + std::to_string(b) + " is free twice";
    const bool is_free = free_named || in_free[i] != 0;
    if (is_free != (refcount_[i] == 0))
      return "block " + std::to_string(b) + " has count " + std::to_string(refcount_[i]) +
             (is_free ? " but is free" : " but is not free");
    if (free_named && !named(b)) return "unnamed block " + std::to_string(b) + " is on the LRU list";
    if (named(b)) {
      ++named_count;
      if (find(hash_[i]) != b) return "block " + std::to_string(b) + "'s name maps elsewhere";
    }
  }
  if (named_count != num_named_blocks()) return "the name map holds blocks that are not named";
  return "";
}

}  // namespace kr
