// Kernel launchers of the CUDA backend. Each enqueues work on `stream` and
// returns at once; pointers are device pointers. bf16 is __nv_bfloat16 in the
// .cu files, passed as void* here so that this header compiles without CUDA.
//
// Threading: called only from the thread that owns the CudaBackend.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace kr::cuda {

// out[t, :] = table[ids[t], :] * scale (scale == 1: a copy; else each product
// rounded to bf16). table [V, H] bf16; out [T, H] bf16.
void launch_embedding(const void* table, const int32_t* ids, float scale, void* out, int T, int H,
                      cudaStream_t stream);

// How a norm applies its weight (Backend's NormKind): x̂ rounded to bf16 then × w,
// or x̂ × (1 + w) in float and rounded once.
constexpr int kNormTimesWeight = 0;
constexpr int kNormTimesOnePlusWeight = 1;

// FP8 rows of a kernel's bf16 output rows for the FP8 W8A8 GEMM, bit for bit
// what launch_quantize_fp8_rows (cuda_qgemm.h) makes of those rows:
// codes[t, k] = e4m3(y[t, k] / scales[t]) saturated, scales[t] = input_scale
// (static_input) or per row max(min(max|y[t, :]|, act_scale_ub if > 0) / 448,
// 1 / (448 * 512)) (cuda_fp8_act.cuh). codes null: none.
struct Fp8RowsOut {
  void* codes = nullptr;    // [T, width] e4m3 bytes
  float* scales = nullptr;  // [T]
  bool static_input = false;
  float input_scale = 0.0f, act_scale_ub = 0.0f;
};

// One row-wise RMS norm launch (one block per row), in the order
//   x' = pre_w ? norm(x, pre_w) (written to x_normed) : x
//   residual (when set) = bf16(residual + x'); y = residual or x'
//   out = norm(y, w); with q.codes, also out's FP8 rows (Fp8RowsOut)
// All tensors [T, H] bf16 (x_normed may be x); weights [H] bf16; one eps and kind.
struct RmsNormArgs {
  void* residual = nullptr;
  const void* x = nullptr;
  const void* pre_w = nullptr;
  void* x_normed = nullptr;
  const void* w = nullptr;
  void* out = nullptr;
  float eps = 0.0f;
  int kind = kNormTimesWeight;
  int T = 0, H = 0;  // H % 8 == 0, H <= 32768
  Fp8RowsOut q;
};
// The widest rows whose FP8 rows a kernel writes (the norm's H, the GLU's I).
constexpr int kFp8RowsMaxWidth = 32768;
// pdl: launched with programmatic dependent launch (cuda_launch.cuh), so that its
// block is resident and waiting when the kernel before it (a batch-1 GEMV) ends.
void launch_rms_norm(const RmsNormArgs& a, bool pdl, cudaStream_t stream);

// Finishes the q/k/v projection in place, per token (Backend::rope): qkv += bias
// (bf16 [(Hq + 2 Hkv) D], optional); each q head normalised with q_norm_w [D] and
// each k head with k_norm_w (optional, both or neither); q and k rotated (angle =
// positions[t] * inv_freq[i] in double). With k_cache/v_cache set, also stores the
// token's rotated k and its v at slot_mapping[t] (fused store_kv; negative: skipped).
struct RopeArgs {
  void* qkv = nullptr;  // [T, (Hq + 2 Hkv) D] bf16
  const int32_t* positions = nullptr;
  const float* inv_freq = nullptr;  // [D / 2]
  int T = 0, q_heads = 0, kv_heads = 0, head_dim = 0;
  const void* bias = nullptr;
  const void* q_norm_w = nullptr;
  const void* k_norm_w = nullptr;
  float norm_eps = 0.0f;
  int norm_kind = kNormTimesWeight;
  const int32_t* slot_mapping = nullptr;
  void* k_cache = nullptr;  // [slots, Hkv * D] bf16, or e4m3 bytes with kv_fp8
  void* v_cache = nullptr;
  // FP8 cache (cuda_kv_fp8.cuh): elements stored as e4m3(x / k_scale or v_scale).
  bool kv_fp8 = false;
  float k_scale = 1.0f, v_scale = 1.0f;
};
void launch_rope(const RopeArgs& a, cudaStream_t stream);
// cos_sin[t, i] = (cos, sin) of RoPE pair i (< half) at positions[t], as rope_kernel
// computes them: the per-step table of the FP8 q/k/v GEMM's RoPE epilogue
// (cuda_fp8_gemm_wgmma.h Fp8QkvRope). cos_sin [T, half] float2.
void launch_rope_table(const int32_t* positions, const float* inv_freq, int T, int half, float2* cos_sin,
                       cudaStream_t stream);
// k/v parts of qkv → caches [slots, Hkv * D] at slot_mapping[t] (negative: skipped);
// kv_fp8: as e4m3(k / k_scale) and e4m3(v / v_scale) bytes.
void launch_store_kv(const void* qkv, const int32_t* slot_mapping, void* k_cache, void* v_cache, int T,
                     int q_heads, int kv_heads, int head_dim, cudaStream_t stream, bool kv_fp8 = false,
                     float k_scale = 1.0f, float v_scale = 1.0f);
// The gated MLP's activation (Backend's Activation).
constexpr int kActSilu = 0;
constexpr int kActGeluTanh = 1;
// out[t, i] = f(gu[t, i]) * gu[t, I + i], f(gate) rounded to bf16 first as HF does.
// gu [T, 2I]; out [T, I]; f = kActSilu or kActGeluTanh.
void launch_silu_mul(const void* gate_up, int activation, void* out, int T, int I, cudaStream_t stream);
// launch_silu_mul that also writes out's FP8 rows (Fp8RowsOut, q.codes set): one
// block per row, the row's products kept in registers. I <= kFp8RowsMaxWidth.
void launch_silu_mul_fp8(const void* gate_up, int activation, void* out, int T, int I, const Fp8RowsOut& q,
                         cudaStream_t stream);
// x[i] = cap * tanh(x[i] / cap) for n elements of f32 (x_f32) or bf16.
void launch_softcap(void* x, bool x_f32, int64_t n, float cap, cudaStream_t stream);
// out[r, :] = x[idx[r], :]; rows of `row_bytes` (multiple of 16).
void launch_gather_rows(const void* x, const int32_t* idx, void* out, int R, int64_t row_bytes,
                        cudaStream_t stream);
// out[t, n] = Σ_k x[t, k] w[n, k] for T ≤ kGemvMaxTokens; x, w bf16; out bf16 or f32 (out_f32);
// K % 8 == 0. T = 1 runs the split-K GEMV of cuda_gemv1.h (with programmatic dependent
// launch when `pdl`); T = 2..4 a warp-per-rows kernel (2 rows per warp for T = 2).
constexpr int kGemvMaxTokens = 4;
void launch_gemv(const void* x, const void* w, void* out, bool out_f32, int T, int N, int K, bool pdl,
                 cudaStream_t stream);
// Per row of logits [R, V] f32: ids[r] = argmax, logprobs[r] = logits[r, id] - logsumexp(row);
// ids_copy (null: none) gets the ids too. Up to kArgmaxSplitRows rows of a large vocabulary
// are each spread over several blocks (one block reading a 128k row took ~15 us), merged by
// the row's last block through `scratch` (device memory of the caller's, one launch at a
// time: partials of argmax_scratch_bytes, tickets [kArgmaxSplitRows] zero before the first
// launch and left zero by each); more rows, or no scratch, take a block a row.
constexpr int kArgmaxSplitRows = 8;
struct ArgmaxScratch {
  void* partials = nullptr;
  unsigned* tickets = nullptr;
};
size_t argmax_scratch_bytes();
void launch_argmax_logprob(const float* logits, int R, int V, int32_t* ids, float* logprobs, int32_t* ids_copy,
                           const ArgmaxScratch& scratch, cudaStream_t stream);
// Token masks (Backend::apply_token_mask): for m < M, row rows[m] of logits [R, V]
// f32 gets -inf where bit i of masks[m * words + i / 32] is 0, and +Inf at every
// NaN/±Inf entry. rows [M], masks [M, words]: device memory.
void launch_apply_token_mask(float* logits, int V, const int32_t* rows, int M, const uint32_t* masks, int words,
                             cudaStream_t stream);
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
  const void* k_cache;        // [slots, Hkv * D] bf16, or e4m3 bytes with kv_fp8
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
  // > 0: a query at position p sees keys (p - window, p] only. 0: all up to p.
  int window;
  // > 0: scores = softcap * tanh(scores / softcap) before the softmax. 0: none.
  float softcap;
  // Split along the keys (flash-decoding): each split covers split_keys keys; with
  // num_splits > 1 partial results go to the scratch and the last block of each
  // (tile, kv head) to finish merges them. num_splits > 1 needs
  // num_tiles * kv_heads <= attn_max_split_groups().
  int num_splits;
  int split_keys;
  float* partial_out;  // [num_tiles * tile_rows, num_splits, D] (rows = tokens * group)
  float* partial_ml;   // [num_tiles * tile_rows, num_splits, 2]: max, sum
  // FP8 cache: K and V hold e4m3 bytes; k_scale is already in `scale`, v_scale
  // multiplies the output rows.
  bool kv_fp8 = false;
  float v_scale = 1.0f;
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
