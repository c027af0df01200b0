// KvHostTier: the prefix cache's second level, in host memory (--kv-offload-gb).
// It holds copies of named GPU blocks in fixed-size host slots (one block over
// all layers, K and V), found by the same BlockHash, with its own LRU:
// - when the GPU pool evicts a named block (KvEvictionListener), the tier
//   keeps a copy: it already has one (copied ahead, see flush), or it plans a
//   copy out now, into a free slot or its least recently used one;
// - a prefix match that runs past the GPU pool continues here; the hits get
//   fresh GPU blocks (named at once) and copies back in (plan_reload), instead
//   of being recomputed;
// - flush(), once per step before the forward, issues the planned copies on the
//   runner's copy stream: evicted blocks out, then reloads in, and makes the
//   step's forward wait (on the device) for them, since it overwrites the
//   evicted blocks and reads the reloaded ones. Then it copies out, ahead of
//   need, the GPU blocks next in line for eviction, so that those copies overlap
//   the step's compute and a later eviction finds its copy made.
// All copies go through one stream in order, so a slot reused for a new copy
// never races an older copy that reads or writes it. The host copy stays when
// its block comes back (the tier is inclusive); slots are dropped only as LRU
// victims.
//
// Threading: engine thread only.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/block_hash.h"
#include "engine/kv_block_manager.h"
#include "engine/lru_list.h"
#include "engine/model_runner.h"

namespace kr {

struct KvHostTierStats {
  int64_t blocks_offloaded = 0;  // copies out (evictions and ahead of eviction)
  int64_t blocks_reloaded = 0;   // copies back in (host hits)
};

class KvHostTier final : public KvEvictionListener {
 public:
  // runner->num_host_slots() slots (> 0). Registers itself as `blocks`' eviction
  // listener. `prefetch_blocks`: how many blocks ahead of eviction flush() copies out.
  KvHostTier(ModelRunner* runner, KvBlockManager* blocks, int32_t prefetch_blocks);
  ~KvHostTier() override;

  int32_t num_slots() const { return static_cast<int32_t>(held_.size()); }
  int32_t num_used_slots() const { return static_cast<int32_t>(by_hash_.size()); }
  // The slot holding `hash`, or -1.
  int32_t find(const BlockHash& hash) const;
  // Keeps `slot` from being reused until the next flush (a match is about to reload it).
  void hold(int32_t slot);
  // Plans the copy of a held slot into the GPU block `block`, issued by the next flush.
  void plan_reload(int32_t slot, int32_t block);
  void on_evict(int32_t block, const BlockHash& hash) override;
  // Issues what was planned (see above). Before every step's forward.
  void flush();

  const KvHostTierStats& stats() const { return stats_; }
  // For tests: "" when no slot is held or planned and the slots agree with the names.
  std::string check_consistency() const;

 private:
  // A slot for a new copy: a free one, else the LRU victim (its name dropped). -1: all held.
  int32_t take_slot();
  void assign(int32_t slot, const BlockHash& hash);

  ModelRunner* runner_;
  KvBlockManager* blocks_;
  const int32_t prefetch_blocks_;
  std::vector<int32_t> free_;             // slots without data
  LruList lru_;                           // slots with data, not held
  std::vector<BlockHash> hash_;           // [slots]
  std::vector<int32_t> held_;             // [slots] holds until flush
  std::vector<uint64_t> written_;         // [slots] ticket of the copy that filled it
  std::unordered_map<BlockHash, int32_t, BlockHashHash> by_hash_;
  std::vector<KvBlockCopy> out_now_, in_now_, ahead_;  // planned copies
  std::vector<int32_t> scratch_;
  uint64_t wait_ticket_ = 0;  // older copies the next forward must wait for
  KvHostTierStats stats_;
};

}  // namespace kr
