#include "engine/kv_host_tier.h"

#include <algorithm>

#include "base/check.h"

namespace kr {

KvHostTier::KvHostTier(ModelRunner* runner, KvBlockManager* blocks, int32_t prefetch_blocks)
    : runner_(runner),
      blocks_(blocks),
      prefetch_blocks_(prefetch_blocks),
      lru_(runner->num_host_slots()),
      hash_(static_cast<size_t>(runner->num_host_slots())),
      held_(static_cast<size_t>(runner->num_host_slots()), 0),
      written_(static_cast<size_t>(runner->num_host_slots()), 0) {
  const int32_t n = runner->num_host_slots();
  KR_CHECK(n > 0);
  free_.reserve(static_cast<size_t>(n));
  for (int32_t s = n - 1; s >= 0; --s) free_.push_back(s);
  blocks_->set_eviction_listener(this);
}

KvHostTier::~KvHostTier() { blocks_->set_eviction_listener(nullptr); }

int32_t KvHostTier::find(const BlockHash& hash) const {
  auto it = by_hash_.find(hash);
  return it == by_hash_.end() ? -1 : it->second;
}

void KvHostTier::hold(int32_t slot) {
  if (held_[static_cast<size_t>(slot)]++ == 0) lru_.remove(slot);
}

void KvHostTier::plan_reload(int32_t slot, int32_t block) {
  KR_CHECK(held_[static_cast<size_t>(slot)] > 0);
  in_now_.push_back({block, slot});
}

int32_t KvHostTier::take_slot() {
  if (!free_.empty()) {
    const int32_t s = free_.back();
    free_.pop_back();
    return s;
  }
  if (lru_.empty()) return -1;
  const int32_t s = lru_.pop_front();
  by_hash_.erase(hash_[static_cast<size_t>(s)]);
  return s;
}

void KvHostTier::assign(int32_t slot, const BlockHash& hash) {
  hash_[static_cast<size_t>(slot)] = hash;
  by_hash_.emplace(hash, slot);
  lru_.push_back(slot);
}

void KvHostTier::on_evict(int32_t block, const BlockHash& hash) {
  const int32_t have = find(hash);
  if (have >= 0) {
    // Copied already (ahead of eviction, or before an earlier reload): the block
    // may be overwritten once that copy is done.
    if (lru_.contains(have)) {
      lru_.remove(have);
      lru_.push_back(have);
    }
    const uint64_t t = written_[static_cast<size_t>(have)];
    if (t != 0 && !runner_->kv_copies_done(t)) wait_ticket_ = std::max(wait_ticket_, t);
    return;
  }
  const int32_t slot = take_slot();
  if (slot < 0) return;  // every slot is held by a reload of this step: the block is lost
  assign(slot, hash);
  out_now_.push_back({block, slot});
}

void KvHostTier::flush() {
  uint64_t ticket = 0;
  if (!out_now_.empty()) {
    ticket = runner_->copy_kv_blocks(out_now_, /*to_host=*/true);
    for (const KvBlockCopy& c : out_now_) written_[static_cast<size_t>(c.host_slot)] = ticket;
    stats_.blocks_offloaded += static_cast<int64_t>(out_now_.size());
    out_now_.clear();
  }
  if (!in_now_.empty()) {
    ticket = runner_->copy_kv_blocks(in_now_, /*to_host=*/false);
    stats_.blocks_reloaded += static_cast<int64_t>(in_now_.size());
    for (const KvBlockCopy& c : in_now_) {
      if (--held_[static_cast<size_t>(c.host_slot)] == 0) lru_.push_back(c.host_slot);
    }
    in_now_.clear();
  }
  // Copies on one stream finish in order: waiting for the last covers the others.
  const uint64_t wait = std::max(wait_ticket_, ticket);
  if (wait != 0) runner_->wait_kv_copies(wait);
  wait_ticket_ = 0;

  // Ahead of need: the blocks the next prefetch_blocks_ allocations would evict.
  const int32_t unnamed_free = blocks_->num_free_blocks() - blocks_->num_free_named_blocks();
  const int32_t want = prefetch_blocks_ - unnamed_free;
  if (want <= 0) return;
  blocks_->eviction_candidates(want, &scratch_);
  for (int32_t b : scratch_) {
    const BlockHash& h = blocks_->hash_of(b);
    if (find(h) >= 0) continue;
    const int32_t slot = take_slot();
    if (slot < 0) break;
    assign(slot, h);
    ahead_.push_back({b, slot});
  }
  if (ahead_.empty()) return;
  const uint64_t t = runner_->copy_kv_blocks(ahead_, /*to_host=*/true);
  for (const KvBlockCopy& c : ahead_) written_[static_cast<size_t>(c.host_slot)] = t;
  stats_.blocks_offloaded += static_cast<int64_t>(ahead_.size());
  ahead_.clear();
}

std::string KvHostTier::check_consistency() const {
  if (!out_now_.empty() || !in_now_.empty()) return "copies planned and not flushed";
  int32_t with_data = 0;
  for (int32_t s = 0; s < num_slots(); ++s) {
    if (held_[static_cast<size_t>(s)] != 0) return "slot " + std::to_string(s) + " is still held";
    if (lru_.contains(s)) {
      ++with_data;
      if (find(hash_[static_cast<size_t>(s)]) != s) return "slot " + std::to_string(s) + "'s name maps elsewhere";
    }
  }
  if (with_data != num_used_slots()) return "the name map holds slots that are not in the LRU list";
  if (with_data + static_cast<int32_t>(free_.size()) != num_slots()) return "slots are neither free nor used";
  return "";
}

}  // namespace kr
