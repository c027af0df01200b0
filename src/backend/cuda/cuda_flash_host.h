// Host-side helpers of the flash attention kernels (cuda_flash_prefill.cu,
// cuda_flash_decode.cu): device shape, the split choice, argument checks.
// Internal to those files and cuda_flash_host.cc.
//
// Threading: called only from the thread that owns the CUDA backend.
#pragma once

#include "backend/cuda/cuda_flash_attention.h"

namespace kr::cuda::flash_host {

// Multiprocessors of the current device (read once).
int sm_count();
// The split count that minimises ceil(pairs × splits / slots) × (key_weight ×
// keys per split + overhead_keys), the fewest splits on ties; splits at most
// max_splits and at least one key tile (kFlashSplitGranule keys) each, and
// partials of bytes_per_split_pair per (pair, split) within workspace_bytes.
// key_weight: what a key costs a block against the overhead's unit (about 2 for
// a block that streams at half the rate). cost (optional): the minimum.
FlashSplit choose_split(int pairs, int max_keys, int slots, int max_splits, int overhead_keys,
                        size_t bytes_per_split_pair, size_t workspace_bytes, double key_weight = 1.0,
                        double* cost = nullptr);
// What a key costs a 2-warp decode block against a 4-warp one (flash_decode_split):
// twice for half the bytes in flight, and a little more, for four 2-warp blocks an
// SM stream a few percent slower than two 4-warp ones once both run many waves (the
// fit to kr-attention-check's block-shape timings: docs/performance.md).
constexpr double kDecodeTwoWarpKeyWeight = 2.1;
// The decode kernel's block shape and split for `pairs` (tile, kv head) pairs:
// choose_split for 4-warp blocks (slots4 resident at once, a key weighing 1) and
// for 2-warp blocks (slots2, a key weighing key_weight2), the lesser cost, 4 warps
// on a tie; `warps` 4 or 2 forces that shape (CudaOptions::flash_decode_warps).
FlashSplit choose_decode_shape(int pairs, int max_keys, int slots4, int slots2, int max_splits, int overhead_keys,
                               size_t bytes_per_split_pair, size_t workspace_bytes, double key_weight2, int warps);
// Launch arguments the kernels handle: shapes, pointers, the split fields.
bool args_ok(const FlashAttnArgs& a, int rows_cap, int max_splits, int max_counters);
// Per kernel (defined in its .cu file): shared memory per block and blocks per SM
// (prefill: of a variant, see kFlashPrefillVariants).
size_t prefill_smem_bytes(int head_dim, int variant = 0);
int prefill_blocks_per_sm(int head_dim, int variant = 0);
// Decode: of the W = 4 shape (0: head dim not handled); blocks per SM of the shape
// with `warps` warps a block (2 or 4; FlashAttnArgs::decode_warps).
size_t decode_smem_bytes(int head_dim);
int decode_blocks_per_sm(int head_dim, bool kv_fp8 = false, int warps = 4);

}  // namespace kr::cuda::flash_host
