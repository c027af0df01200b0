#include "engine/prefix_cache.h"

#include <algorithm>

#include "base/check.h"

namespace kr {

PrefixCache::PrefixCache(KvBlockManager* blocks, KvHostTier* host, BlockHasher hasher)
    : blocks_(blocks), host_(host), hasher_(hasher) {}

void PrefixCache::ensure_hashes(Sequence* s) const {
  if (!s->has_root_hash) {
    s->root_hash = hasher_.root(BlockHashExtras{s->request.cache_salt, 0});
    s->has_root_hash = true;
  }
  hasher_.extend(s->tokens, blocks_->block_size(), s->root_hash, &s->block_hashes);
}

PrefixMatch PrefixCache::match(Sequence* s) {
  KR_CHECK(s->num_computed == 0 && s->block_table.empty());
  ensure_hashes(s);
  const int32_t bs = blocks_->block_size();
  const int32_t max_blocks = (s->num_tokens() - 1) / bs;  // the last token is always computed
  const std::vector<BlockHash>& h = s->block_hashes;
  PrefixMatch m;
  // Block by block, from the GPU pool or else the host tier (the GPU may have
  // evicted a block and kept the next one).
  for (int32_t i = 0; i < max_blocks; ++i) {
    const BlockHash& hi = h[static_cast<size_t>(i)];
    if (blocks_->find(hi) >= 0) {
      ++m.gpu_blocks;
    } else if (host_ != nullptr && host_->find(hi) >= 0) {
      ++m.host_blocks;
    } else {
      break;
    }
  }
  if (m.blocks() < max_blocks) {
    auto it = claims_.find(h[static_cast<size_t>(m.blocks())]);
    m.wait = it != claims_.end() && it->second != s->id();
  }
  return m;
}

bool PrefixCache::admit(Sequence* s, const PrefixMatch& m, int32_t chunk) {
  const int32_t bs = blocks_->block_size();
  const std::vector<BlockHash>& h = s->block_hashes;
  const int32_t n = m.blocks();
  const int64_t matched = static_cast<int64_t>(n) * bs;
  const int64_t total = matched + chunk;
  KR_CHECK(chunk >= 1 && total <= s->num_tokens());
  // Free matched GPU blocks leave the free pool when taken: count them too.
  int32_t free_hits = 0;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t b = blocks_->find(h[static_cast<size_t>(i)]);
    if (b >= 0 && blocks_->refcount(b) == 0) ++free_hits;
  }
  const int32_t new_blocks = static_cast<int32_t>((total + bs - 1) / bs) - m.gpu_blocks;
  if (new_blocks + free_hits > blocks_->num_free_blocks()) return false;

  // First take the GPU hits and hold the host slots: the allocations below may
  // evict free GPU blocks (into the host tier).
  BlockTable& table = s->block_table;
  table.assign(static_cast<size_t>(n), -1);
  scratch_slots_.clear();
  for (int32_t i = 0; i < n; ++i) {
    const int32_t b = blocks_->find(h[static_cast<size_t>(i)]);
    if (b >= 0) {
      blocks_->share(b);
      table[static_cast<size_t>(i)] = b;
    } else {
      const int32_t slot = host_->find(h[static_cast<size_t>(i)]);
      KR_CHECK(slot >= 0);
      host_->hold(slot);
      scratch_slots_.push_back(slot);
    }
  }
  // Host hits: fresh blocks, named now; the reload lands before the step's forward reads them.
  size_t next_slot = 0;
  BlockTable one;
  for (int32_t i = 0; i < n; ++i) {
    if (table[static_cast<size_t>(i)] >= 0) continue;
    one.clear();
    KR_CHECK(blocks_->allocate(&one, 1));
    const int32_t b = one[0];
    KR_CHECK(blocks_->name(b, h[static_cast<size_t>(i)]));
    host_->plan_reload(scratch_slots_[next_slot++], b);
    table[static_cast<size_t>(i)] = b;
  }
  KR_CHECK(blocks_->allocate(&table, total));
  s->num_computed = static_cast<int32_t>(matched);
  s->num_named_blocks = n;

  // Claim the full blocks this sequence is going to compute that nobody else computes.
  s->claims_begin = n;
  s->claims_end = static_cast<int32_t>(h.size());
  for (int32_t i = s->claims_begin; i < s->claims_end; ++i) claims_.emplace(h[static_cast<size_t>(i)], s->id());

  if (s->num_cached_tokens < 0) {  // the first admission (at most num_tokens - 1 match)
    s->num_cached_tokens = static_cast<int32_t>(std::min<int64_t>(matched, s->num_prompt_tokens));
    stats_.queries += s->num_prompt_tokens;
    stats_.hits += s->num_cached_tokens;
    stats_.host_hits += static_cast<int64_t>(m.host_blocks) * bs;
  }
  return true;
}

void PrefixCache::on_computed(Sequence* s) {
  ensure_hashes(s);
  const int32_t full = s->num_computed / blocks_->block_size();
  for (int32_t i = s->num_named_blocks; i < full; ++i) {
    const BlockHash& h = s->block_hashes[static_cast<size_t>(i)];
    blocks_->name(s->block_table[static_cast<size_t>(i)], h);  // false: a copy is named already; this one stays private
    auto it = claims_.find(h);
    if (it != claims_.end() && it->second == s->id()) claims_.erase(it);
  }
  s->num_named_blocks = std::max(s->num_named_blocks, full);
}

void PrefixCache::release(Sequence* s) {
  for (int32_t i = s->claims_begin; i < s->claims_end && i < static_cast<int32_t>(s->block_hashes.size()); ++i) {
    auto it = claims_.find(s->block_hashes[static_cast<size_t>(i)]);
    if (it != claims_.end() && it->second == s->id()) claims_.erase(it);
  }
  s->claims_begin = s->claims_end = 0;
  s->num_named_blocks = 0;
}

}  // namespace kr
