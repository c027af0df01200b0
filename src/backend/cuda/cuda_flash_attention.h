// Tensor-core paged attention for sm_90 (bf16 mma.sync m16n8k16, fp32 accumulate),
// FlashAttention-2 style: a block owns a tile of query rows (one sequence's
// tokens × the q heads of one kv head, so every K/V tile read from the paged cache
// serves the whole GQA group), streams K/V tiles from the cache into shared memory
// with cp.async, and keeps an online softmax (exp2 of log2e-prescaled scores) in
// registers. Two kernels:
//   prefill: tiles of up to flash_prefill_tile_tokens(group, D) tokens (128 rows):
//            prefill, chunked prefill against a cached prefix, prefix-cache hits;
//   decode:  tiles of up to flash_decode_tile_tokens(group) tokens (16 rows),
//            split over the keys so that a batch of a few long sequences fills the GPU.
// Both can split the keys of a tile over gridDim.z blocks; the last block of a
// (tile, kv head) to finish merges the splits by log-sum-exp in the same kernel.
//
// Semantics (the CPU backend's attention plus two optional parameters): row
// (token t of sequence s, q head h) attends to the cached positions j of s with
//   j <= p  where p = min(positions[t], context_lens[s] - 1)
//   j >  p - window                                  (window > 0 only)
// and whose block-table entry is in [0, num_blocks) (other entries: no key there);
// score = q·k · scale, or softcap · tanh(q·k · scale / softcap) when softcap > 0;
// out = Σ softmax(score) v. A row with no such key gets zeros.
//
// Threading: called only from the thread that owns the CUDA backend (the split
// counters and the cached launch attributes are per process, used in stream order).
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

#include "backend/cuda/cuda_kernels.h"  // AttnTile

namespace kr::cuda {

struct FlashAttnArgs {
  const void* qkv;              // [T, (Hq + 2 Hkv) * D] bf16 (only the q part is read)
  const void* k_cache;          // [num_blocks, block_size, Hkv, D] bf16 (e4m3 with kv_fp8)
  const void* v_cache;          // [num_blocks, block_size, Hkv, D] bf16 (e4m3 with kv_fp8)
  void* out;                    // [T, Hq * D] bf16; rows of tokens outside the tiles untouched
  const int32_t* positions;     // [T]
  const int32_t* context_lens;  // [S]
  const int32_t* block_tables;  // [S, max_blocks], -1 padded
  const AttnTile* tiles;        // [num_tiles]: each `count` consecutive tokens of one sequence
  int num_tiles = 0;
  int max_blocks = 0;           // width of block_tables
  int num_blocks = 0;           // blocks in the cache (entries outside [0, num_blocks) hold no key)
  int block_size = 16;          // tokens per block, a power of two
  int q_heads = 0, kv_heads = 0, head_dim = 0;
  float scale = 0.0f;           // usually 1/sqrt(D)
  int window = 0;               // > 0: sliding window of this many positions (the query's own included)
  float softcap = 0.0f;         // > 0: logit soft-cap (Gemma 2)
  // Key splits: the keys a tile attends, [kbeg, kend) (kbeg: its window start rounded
  // down to a key tile, kend: its last position + 1), are cut into num_splits runs of
  // ceil(key tiles / num_splits) whole granules each, from kbeg; split z takes run z
  // (the last runs may be short or empty). So every split of a tile has work however
  // far the block-table width (the shape the split count came from) exceeds the
  // context. num_splits > 1 needs split_keys (the split policy's run length for
  // max_keys, kept for the record and the checks) a multiple of
  // flash_split_granule(), the workspace below, and num_tiles * kv_heads <=
  // kFlashMaxSplitPairs; 1 needs none of these.
  int num_splits = 1;
  int split_keys = 0;
  float* partial_out = nullptr;  // [num_tiles, Hkv, rows_cap, num_splits, D] f32
  float* partial_ml = nullptr;   // [num_tiles, Hkv, rows_cap, num_splits, 2] f32: max (log2 units), sum
  // FP8 cache (cuda_kv_fp8.cuh): k_cache and v_cache hold e4m3 bytes; the keys'
  // scale is already in `scale` (scores = q·k_e4m3 · scale), v_scale multiplies
  // the output rows.
  bool kv_fp8 = false;
  float v_scale = 1.0f;
  // The decode kernel launched with programmatic dependent launch (cuda_launch.cuh;
  // CudaOptions::pdl_flash_decode): its blocks load the metadata and their tiles'
  // older keys before griddepcontrol.wait, Q and the tiles' own keys after it, so
  // the kernel before may still be storing those.
  bool pdl = false;
  // The decode kernel's warps a block: 4 (64-key stages) or 2 (32-key stages in half
  // the shared memory, twice the blocks an SM); the split policy's choice
  // (FlashSplit::decode_warps), which the split count was chosen for. Same
  // results up to float rounding.
  int decode_warps = 4;
  // The decode kernel only (the prefill launcher refuses it): with out_fp8.codes
  // set, also out's FP8 rows for the W8A8 o_proj (Fp8RowsOut, cuda_kernels.h), of
  // the whole rows [Hq * D] of every tile's tokens: the last block of a tile to
  // finish over its kv heads (after the split merge when split) quantizes them as
  // launch_quantize_fp8_rows would. Needs num_tiles <= kFlashMaxFp8Tiles (one
  // arrival counter each).
  Fp8RowsOut out_fp8;
};

struct FlashSplit {
  int num_splits = 1;
  int split_keys = 0;
  int decode_warps = 4;  // decode: the block shape the split is for (FlashAttnArgs::decode_warps)
};

// Query rows (tokens × group) of one tile: 128 for D = 64 and 128, 64 for D = 256
// (the same for every variant).
int flash_prefill_rows(int head_dim);
// Shapes of the prefill kernel at D = 128 (cuda_flash_prefill.cu says what each
// changes; other head dims have one): 1 is the default (CudaOptions); all give the
// same results up to float rounding. CudaOptions::flash_prefill_variant picks one.
constexpr int kFlashPrefillVariants = 6;
// "base", "kv2", ...; "?" outside [0, kFlashPrefillVariants).
const char* flash_prefill_variant_name(int variant);
// The variant a prefill launch over at most max_keys keys runs: short_variant
// where max_keys <= short_max_keys (0: never), else `variant` (CudaOptions::
// flash_prefill_variant, flash_prefill_short_variant, flash_prefill_short_max_keys).
constexpr int flash_prefill_variant_for(int max_keys, int variant, int short_variant, int short_max_keys) {
  return max_keys <= short_max_keys ? short_variant : variant;
}
// Tokens per prefill tile: flash_prefill_rows(D) / group (at least 1; group must be <= rows).
int flash_prefill_tile_tokens(int group, int head_dim);
// Rows of a decode tile (16) and its tokens: 16 / group, or 0 when group > 16 (use prefill).
constexpr int kFlashDecodeRows = 16;
int flash_decode_tile_tokens(int group);
// split_keys must be a multiple of this (the key tile of both kernels).
constexpr int kFlashSplitGranule = 64;
constexpr int flash_split_granule() { return kFlashSplitGranule; }
// Most (tile, kv head) pairs of a launch with num_splits > 1 (one arrival counter each).
constexpr int kFlashMaxSplitPairs = 1 << 16;
// Most tiles of a decode launch that writes out_fp8 (one arrival counter each);
// beyond, the caller quantizes out itself.
constexpr int kFlashMaxFp8Tiles = 16384;
// True when the kernels handle this shape (D 64, 128 or 256; group divides; block_size a power of two).
bool flash_attention_supported(int q_heads, int kv_heads, int head_dim, int block_size);

// Split policies, from shapes only (so a recorded decode graph stays valid for
// every step of its batch size and block-table width): the number of splits that
// minimises (waves of blocks over every SM's resident slots) × (keys per split +
// a per-block overhead). max_keys: the most keys a tile attends (decode: e.g.
// max_blocks * block_size; prefill: the largest context of the step).
// workspace_bytes: what the caller has for partial_out + partial_ml (splits whose
// flash_workspace_bytes exceed it are not considered; one split needs none).
// More than kFlashMaxSplitPairs pairs: one split. kv_fp8: for the FP8 cache's
// decode instance (its occupancy; its keys cost half the bytes). Decode also picks
// the block shape (decode_warps 4 or 2) whose waves × block time is least, a
// 2-warp block streaming keys at half a 4-warp block's rate with as much
// overhead; `warps` 2 or 4 forces one (CudaOptions::flash_decode_warps), 0 chooses.
FlashSplit flash_decode_split(int num_tiles, int kv_heads, int head_dim, int max_keys,
                              size_t workspace_bytes = SIZE_MAX, bool kv_fp8 = false, int warps = 0);
FlashSplit flash_prefill_split(int num_tiles, int kv_heads, int head_dim, int max_keys,
                               size_t workspace_bytes = SIZE_MAX, int variant = 0);
// Most splits a launch may use (the merge keeps rows × splits weights in shared memory).
constexpr int kFlashMaxSplits = 256;
int flash_prefill_max_splits(int head_dim, int variant = 0);
int flash_decode_max_splits(int head_dim);
// Bytes of partial_out + partial_ml for a launch with these shapes (0 when
// num_splits == 1); rows_cap: flash_prefill_rows(D) or kFlashDecodeRows.
// partial_ml follows partial_out: partial_ml = partial_out + num_tiles * Hkv * rows_cap * num_splits * D.
size_t flash_workspace_bytes(int num_tiles, int kv_heads, int rows_cap, int num_splits, int head_dim);

// Sets the kernels' shared-memory limits and reads their occupancy (what the split
// policies use) on the current device. The launchers and policies do it on first
// use; a backend calls this once up front, so that no attribute call falls inside
// a step-graph capture. Prefill: of this variant (call it for each variant the
// backend may launch).
void configure_flash_attention(int prefill_variant = 0);

// Enqueue on `stream`. Return false (nothing launched) when the arguments are outside
// what the kernels handle (unsupported shape, split_keys not a multiple of the
// granule, a missing workspace, more (tile, kv head) pairs than split counters).
// Tiles hold at most flash_prefill_tile_tokens / flash_decode_tile_tokens tokens.
// out_fp8: decode only, at most kFlashMaxFp8Tiles tiles.
// The prefill's variant must be the one its split came from (false outside
// [0, kFlashPrefillVariants)).
bool launch_flash_prefill(const FlashAttnArgs& a, cudaStream_t stream, int variant = 0);
bool launch_flash_decode(const FlashAttnArgs& a, cudaStream_t stream);

}  // namespace kr::cuda
