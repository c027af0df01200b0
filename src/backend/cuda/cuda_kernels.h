// Kernel launchers of the CUDA backend. Each enqueues work on `stream` and
// returns at once; pointers are device pointers. bf16 is __nv_bfloat16 in the
// .cu files, passed as void* here so that this header compiles without CUDA.
//
// Threading: called only from the thread that owns the CudaBackend.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace kr::cuda {

// out[t, :] = table[ids[t], :]. table [V, H] bf16; out [T, H] bf16.
void launch_embedding(const void* table, const int32_t* ids, void* out, int T, int H, cudaStream_t stream);
// residual (may be null) += x; out = rms_norm(residual or x) * w. All [T, H] bf16; w [H] bf16.
void launch_rms_norm(void* residual, const void* x, const void* w, float eps, void* out, int T, int H,
                     cudaStream_t stream);
// Rotates q and k heads of qkv [T, (Hq + 2 Hkv) * D] in place; angle = positions[t] * inv_freq[i] in double.
// With k_cache/v_cache set, also stores the token's rotated k and its v at slot_mapping[t] (fused store_kv).
void launch_rope(void* qkv, const int32_t* positions, const float* inv_freq, int T, int q_heads, int kv_heads,
                 int head_dim, cudaStream_t stream, const int32_t* slot_mapping = nullptr, void* k_cache = nullptr,
                 void* v_cache = nullptr);
// k/v parts of qkv → caches [slots, Hkv * D] at slot_mapping[t] (negative: skipped).
void launch_store_kv(const void* qkv, const int32_t* slot_mapping, void* k_cache, void* v_cache, int T,
                     int q_heads, int kv_heads, int head_dim, cudaStream_t stream);
// out[t, i] = silu(gu[t, i]) * gu[t, I + i]. gu [T, 2I]; out [T, I].
void launch_silu_mul(const void* gate_up, void* out, int T, int I, cudaStream_t stream);
// out[r, :] = x[idx[r], :]; rows of `row_bytes` (multiple of 16).
void launch_gather_rows(const void* x, const int32_t* idx, void* out, int R, int64_t row_bytes,
                        cudaStream_t stream);
// out[t, n] = Σ_k x[t, k] w[n, k] for T ≤ kGemvMaxTokens; x, w bf16; out bf16 or f32 (out_f32);
// K % 8 == 0. T = 1 runs the split-K GEMV of cuda_gemv1.h (with programmatic dependent
// launch when `pdl`); T = 2..4 a warp-per-rows kernel (2 rows per warp for T = 2).
constexpr int kGemvMaxTokens = 4;
void launch_gemv(const void* x, const void* w, void* out, bool out_f32, int T, int N, int K, bool pdl,
                 cudaStream_t stream);
// Per row of logits [R, V] f32: ids[r] = argmax, logprobs[r] = logits[r, id] - logsumexp(row).
void launch_argmax_logprob(const float* logits, int R, int V, int32_t* ids, float* logprobs, cudaStream_t stream);
// f32/f16 → bf16 conversion of n elements (used at weight upload).
void launch_to_bf16(const void* src, bool src_is_f16, bool src_is_f32, void* dst, int64_t n, cudaStream_t stream);

// One tile of paged attention work: `count` query tokens of sequence `seq`
// starting at token row `first`. Built on the host per step.
struct AttnTile {
  int32_t seq;
  int32_t first;
  int32_t count;
};

struct AttnArgs {
  const void* qkv;            // [T, (Hq + 2 Hkv) * D] bf16
  const void* k_cache;        // [slots, Hkv * D] bf16
  const void* v_cache;
  void* out;                  // [T, Hq * D] bf16
  const int32_t* positions;   // [T]
  const int32_t* context_lens;  // [S]
  const int32_t* block_tables;  // [S, max_blocks]
  const AttnTile* tiles;      // [num_tiles]
  int num_tiles;
  bool decode_only;  // every tile holds one token (a decode step)
  int max_blocks;
  int block_size;
  int q_heads, kv_heads, head_dim;
  float scale;
  // Split along the keys (flash-decoding): each split covers split_keys keys; with
  // num_splits > 1 partial results go to the scratch and the last block of each
  // (tile, kv head) to finish merges them. num_splits > 1 needs
  // num_tiles * kv_heads <= attn_max_split_groups().
  int num_splits;
  int split_keys;
  float* partial_out;  // [num_tiles * tile_rows, num_splits, D] (rows = tokens * group)
  float* partial_ml;   // [num_tiles * tile_rows, num_splits, 2]: max, sum
};
// Rows (token, head-of-group) one tile holds: tile tokens = attn_tile_tokens(group).
int attn_tile_tokens(int group);
// Upper bound on AttnArgs::num_splits.
int attn_max_splits();
// Upper bound on num_tiles * kv_heads of a launch with num_splits > 1 (one arrival
// counter per (tile, kv head)).
int attn_max_split_groups();
// Enqueues the attention of every tile (num_tiles == 0: nothing).
void launch_paged_attention(const AttnArgs& a, cudaStream_t stream);
// Allows the attention kernels their dynamic shared memory on the current device;
// called once by the backend before the first launch.
void configure_attention_kernels();

}  // namespace kr::cuda
