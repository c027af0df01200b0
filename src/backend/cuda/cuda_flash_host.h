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
// The split count that minimises ceil(pairs × splits / slots) × (keys per split +
// overhead_keys), the fewest splits on ties; splits at most max_splits and at
// least one key tile (kFlashSplitGranule keys) each, and partials of
// bytes_per_split_pair per (pair, split) within workspace_bytes.
FlashSplit choose_split(int pairs, int max_keys, int slots, int max_splits, int overhead_keys,
                        size_t bytes_per_split_pair, size_t workspace_bytes);
// Launch arguments the kernels handle: shapes, pointers, the split fields.
bool args_ok(const FlashAttnArgs& a, int rows_cap, int max_splits, int max_counters);
// Per kernel (defined in its .cu file): shared memory per block and blocks per SM
// (prefill: of a variant, see kFlashPrefillVariants).
size_t prefill_smem_bytes(int head_dim, int variant = 0);
int prefill_blocks_per_sm(int head_dim, int variant = 0);
size_t decode_smem_bytes(int head_dim);
int decode_blocks_per_sm(int head_dim, bool kv_fp8 = false);

}  // namespace kr::cuda::flash_host
