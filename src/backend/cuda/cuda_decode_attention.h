// Short-context decode attention (cuda_decode_attention.cu): the kernel for
// decode-only steps of a few sequences with short block tables
// (CudaOptions::short_decode_attention), where the work is a few hundred KB per
// layer and latency, not bandwidth, sets the time.
//
// Semantics: exactly those of the paged kernel (launch_paged_attention, AttnArgs)
// on a decode-only step: the token t of tile i (one token per tile) at position
// p = min(positions[t], context_lens[seq] - 1), q head h of kv head h / group,
// attends to the keys j of its sequence with j <= p and, when window > 0,
// j > p - window; score = (q · scale) · k, soft-capped as
// softcap · tanh(score / softcap) when softcap > 0; out = Σ softmax(score) v, in
// bf16; a row with no key gets zeros.
//
// Programmatic dependent launch: with pdl, the kernel reads the step metadata and
// the K/V of every key before its token's own position before pdl_wait (so that
// they arrive while the kernel before it drains), and only Q and its own key after.
// That relies on what a decode step writes: its kernels write only the current
// tokens' own slots (the K/V store), and the metadata and all older keys were
// written before the step's first kernel, which is launched without PDL.
//
// Threading: called only from the thread that owns the CUDA backend.
#pragma once

#include <cuda_runtime_api.h>

#include "backend/cuda/cuda_kernels.h"  // AttnArgs

namespace kr::cuda {

// True when the kernel handles this shape: head_dim 64, 128 or 256 and a GQA group of 1 to 8.
bool decode_attention_supported(int q_heads, int kv_heads, int head_dim);
// Blocks (one thread block cluster, at most 8) per (tile, kv head) for a block table
// of max_keys keys and num_tiles tokens: a shape-only choice, so a recorded step
// graph stays valid.
// kv_fp8: of the FP8-cache instance (its occupancy may differ).
int decode_attention_cluster(int head_dim, int q_heads, int kv_heads, int max_keys, int num_tiles,
                             bool kv_fp8 = false);
// Enqueues the attention of a decode-only step: a.decode_only, every tile one
// token, a.max_blocks * a.block_size keys per table (the cluster size comes from
// it); num_splits, split_keys and the partial buffers are not used.
void launch_decode_attention(const AttnArgs& a, bool pdl, cudaStream_t stream);
// Sets the kernels' shared-memory limits and reads their occupancy on the current
// device; called once by the backend before the first launch (outside a capture).
void configure_decode_attention();

}  // namespace kr::cuda
