// Host-side pieces of the flash attention kernels that need no device code:
// tile and workspace shapes, the split choice, argument checks.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "backend/cuda/cuda_flash_attention.h"
#include "backend/cuda/cuda_flash_host.h"

namespace kr::cuda {

namespace flash_host {

int sm_count() {
  static int n = [] {
    int dev = 0, count = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || count < 1)
      return 1;
    return count;
  }();
  return n;
}

FlashSplit choose_split(int pairs, int max_keys, int slots, int max_splits, int overhead_keys,
                        size_t bytes_per_split_pair, size_t workspace_bytes, double key_weight, double* cost_out) {
  constexpr int G = kFlashSplitGranule;
  const int64_t tiles = std::max<int64_t>(1, (static_cast<int64_t>(max_keys) + G - 1) / G);
  FlashSplit best{1, static_cast<int>(tiles * G)};
  // Waves of `blocks` times one block's keys (at key_weight) and overhead.
  auto cost_of = [&](int64_t blocks, int64_t keys) {
    const int64_t waves = (std::max<int64_t>(1, blocks) + std::max(1, slots) - 1) / std::max(1, slots);
    return static_cast<double>(waves) * (key_weight * static_cast<double>(keys) + overhead_keys);
  };
  if (pairs <= 0 || slots <= 0 || pairs > kFlashMaxSplitPairs) {
    if (cost_out != nullptr) *cost_out = cost_of(pairs, tiles * G);  // one split
    return best;
  }
  double best_cost = std::numeric_limits<double>::infinity();
  const int64_t limit = std::min<int64_t>(std::max(1, max_splits), tiles);
  int64_t last_per = 0;
  for (int64_t want = 1; want <= limit; ++want) {
    const int64_t per = (tiles + want - 1) / want;  // key tiles per split
    if (per == last_per) continue;                   // same split as the previous count
    last_per = per;
    const int64_t ns = (tiles + per - 1) / per;
    const int64_t blocks = static_cast<int64_t>(pairs) * ns;
    if (ns > 1 && static_cast<double>(blocks) * static_cast<double>(bytes_per_split_pair) >
                      static_cast<double>(workspace_bytes))
      continue;
    const double cost = cost_of(blocks, per * G);
    if (cost < best_cost) {
      best_cost = cost;
      best = FlashSplit{static_cast<int>(ns), static_cast<int>(per * G)};
    }
  }
  if (cost_out != nullptr) *cost_out = best_cost;
  return best;
}

FlashSplit choose_decode_shape(int pairs, int max_keys, int slots4, int slots2, int max_splits, int overhead_keys,
                               size_t bytes_per_split_pair, size_t workspace_bytes, double key_weight2, int warps) {
  double cost4 = 0.0, cost2 = 0.0;
  FlashSplit four = choose_split(pairs, max_keys, slots4, max_splits, overhead_keys, bytes_per_split_pair,
                                 workspace_bytes, 1.0, &cost4);
  four.decode_warps = 4;
  if (warps == 4) return four;
  FlashSplit two = choose_split(pairs, max_keys, slots2, max_splits, overhead_keys, bytes_per_split_pair,
                                workspace_bytes, key_weight2, &cost2);
  two.decode_warps = 2;
  if (warps == 2) return two;
  return cost2 < cost4 ? two : four;
}

bool args_ok(const FlashAttnArgs& a, int rows_cap, int max_splits, int max_counters) {
  if (a.qkv == nullptr || a.k_cache == nullptr || a.v_cache == nullptr || a.out == nullptr ||
      a.positions == nullptr || a.context_lens == nullptr || a.block_tables == nullptr || a.tiles == nullptr)
    return false;
  if (!flash_attention_supported(a.q_heads, a.kv_heads, a.head_dim, a.block_size)) return false;
  if (a.q_heads / a.kv_heads > rows_cap || a.kv_heads > 65535) return false;
  if (a.num_tiles < 0 || a.max_blocks < 0 || a.num_blocks < 0) return false;
  if (static_cast<int64_t>(a.num_blocks) * a.block_size >= (int64_t{1} << 31)) return false;  // int32 slots
  if (!(a.scale > 0.0f) || !(a.softcap >= 0.0f) || a.window < 0) return false;
  if (a.num_splits < 1 || a.num_splits > max_splits) return false;
  if (a.num_splits > 1) {
    if (a.split_keys <= 0 || a.split_keys % kFlashSplitGranule != 0) return false;
    if (a.partial_out == nullptr || a.partial_ml == nullptr) return false;
    if (static_cast<int64_t>(a.num_tiles) * a.kv_heads > max_counters) return false;
  }
  return true;
}

}  // namespace flash_host

void configure_flash_attention(int prefill_variant) {
  flash_host::sm_count();
  for (int d : {64, 128, 256}) {
    flash_host::prefill_blocks_per_sm(d, prefill_variant);
    flash_host::decode_blocks_per_sm(d);
    flash_host::decode_blocks_per_sm(d, /*kv_fp8=*/true);
  }
}

int flash_decode_tile_tokens(int group) {
  if (group <= 0 || group > kFlashDecodeRows) return 0;
  return kFlashDecodeRows / group;
}

bool flash_attention_supported(int q_heads, int kv_heads, int head_dim, int block_size) {
  if (kv_heads <= 0 || q_heads <= 0 || q_heads % kv_heads != 0) return false;
  if (head_dim != 64 && head_dim != 128 && head_dim != 256) return false;
  return block_size > 0 && (block_size & (block_size - 1)) == 0;
}

size_t flash_workspace_bytes(int num_tiles, int kv_heads, int rows_cap, int num_splits, int head_dim) {
  if (num_splits <= 1) return 0;
  const size_t rows = static_cast<size_t>(num_tiles) * kv_heads * rows_cap * num_splits;
  return rows * (static_cast<size_t>(head_dim) + 2) * sizeof(float);
}

}  // namespace kr::cuda
