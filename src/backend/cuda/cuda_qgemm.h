// Kernels of quantized Linears (weights in the layout of qgemm_layout.h, bf16
// activations):
//
//  launch_qgemm   out[T, N] = x'[T, K] · Wᵀ on the tensor cores (mma.sync
//                 m16n8k16 bf16, f32 accumulate), the weight dequantized in
//                 registers, never in memory; each packed byte is read once per
//                 tile of tokens. A block owns two 16-row tiles of W (paired for
//                 the epilogue: adjacent rows, gate row i with up row I + i, RoPE
//                 dims i with i + D/2) and a slice of K; its 4 warps split the
//                 slice, several 16-byte loads in flight each; slices of one
//                 tile pair are summed by the block that finishes last (fixed
//                 order: deterministic). Two shapes:
//                   T ≤ 8 ("GEMV"): 8 token columns per block; each 32-column
//                     chunk (64 for FP8) is accumulated with the exact codes
//                     (q - z, or the FP8 value) and folded into the row's sum with
//                     its group scale in f32 (MLX biases: + b · Σx of the chunk);
//                   T > 8: 32 token columns per block (grid over token tiles);
//                     the weight is dequantized to bf16 ((q - z) s, q s + b,
//                     fp8 s) in registers, Marlin-style; or (QGemmPath::kV2)
//                     the batched kernel, 256 rows x 64 tokens per block.
//                 Fused like cuda_gemv1.h: an RMSNorm prologue (T ≤ 8; x̂·w or
//                 x̂·(1+w)), and the GLU (silu or gelu_tanh) and bias + RoPE +
//                 KV-store epilogues, with the unfused ops' roundings.
//  launch_qdequant_dense   W as bf16 [N, K] (input-column order): for cuBLAS when
//                 T is large (prefill), where a GEMM at full tensor-core rate beats
//                 dequantizing every tile again.
//  launch_qembedding       rows of a quantized embedding table (MLX), as bf16.
//  launch_gather_cols      x[:, perm]: activations in a GPTQ act-order weight's
//                 canonical column order.
//  launch_quantize_fp8_rows  per-token (or static) FP8 e4m3 quantization of x for
//                 the W8A8 GEMM (cuBLASLt), with the scales, where the op that
//                 produced x did not write its FP8 rows (cuda_fp8_act.cuh: the
//                 same arithmetic).
//
// Threading: called only from the thread that owns the CudaBackend.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

#include "backend/cuda/qgemm_layout.h"

namespace kr::cuda {

// Device buffers of one repacked weight (cuda_quant_repack.h), owned by the backend.
struct QWeight {
  QCode code = QCode::kU4;
  int N = 0, K = 0, Np = 0, Kp = 0;
  int group = 0, groups = 0, steps = 0;
  bool meta_f16 = false;  // integer codes: 16-bit meta floats are f16 (else bf16)
  bool has_bias = false;  // integer codes: MLX biases (else zero points)
  const void* codes = nullptr;     // integer: uint4 words; FP8: [Np, Kp] bytes
  const uint32_t* meta = nullptr;  // [Np / 16, groups, 16]
  const int32_t* perm = nullptr;   // [K] act-order, or null
  // FP8 W8A8 (cuBLASLt): per-row scales [N] and the activation scheme.
  bool w8a8 = false;
  const float* row_scale = nullptr;
  bool static_input = false;
  float input_scale = 0.0f, act_scale_ub = 0.0f;
};

enum class QEpilogue {
  kPlain,   // out[T, N] bf16 (or f32 with out_f32)
  kSwiglu,  // W = [gate; up] (N = 2 I, I % 16 == 0): out [T, 2 I] and act[t, i] = f(gate) * up
  kRope,    // W = qkv (N = (Hq + 2 Hkv) D, D % 32 == 0): the bias added, q, k rotated at
            // positions[t]; k, v stored at slots[t] of the paged caches (skipped when < 0)
};

struct QGemmArgs {
  const void* x = nullptr;  // [T, K] bf16 (canonical column order when the weight has a perm)
  void* out = nullptr;      // [T, N]
  bool out_f32 = false;
  int T = 0;
  // RMSNorm prologue (T ≤ 8 only): x' = rms_norm(x) with norm_w in the form norm_kind
  // (kNormTimesWeight / kNormTimesOnePlusWeight, cuda_kernels.h); also written to normed [T, K].
  const void* norm_w = nullptr;
  float eps = 0.0f;
  int norm_kind = 0;
  void* normed = nullptr;
  // kSwiglu: act [T, I] bf16; activation kActSilu or kActGeluTanh (cuda_kernels.h).
  void* act = nullptr;
  int activation = 0;
  // kRope (no per-head q/k norms: those run in the unfused rope kernel):
  const void* bias = nullptr;          // [N] bf16 added to every row before the rotation, or null
  const int32_t* positions = nullptr;  // [T]
  const int32_t* slots = nullptr;      // [T]
  const float* inv_freq = nullptr;     // [D / 2]
  void* k_cache = nullptr;             // [slots, Hkv * D] bf16
  void* v_cache = nullptr;
  bool kv_fp8 = false;                 // caches of e4m3(x / k_scale or v_scale) bytes (cuda_kv_fp8.cuh)
  float k_scale = 1.0f, v_scale = 1.0f;
  int q_heads = 0, kv_heads = 0, head_dim = 0;
  // Split-K scratch: f32 partial sums and one arrival counter per (tile pair,
  // token tile), zero between launches (each launch leaves them zero).
  float* partials = nullptr;
  size_t partial_floats = 0;
  int* counters = nullptr;
  int counter_count = 0;
};

// Rows of tokens above which the kernels switch from the T ≤ 8 shape to the T > 8 one.
constexpr int kQGemvMaxTokens = 8;

// Whether launch_qgemm runs these shapes: K % 8 == 0, at most 2^21 rows, the
// epilogue's conditions above, a norm prologue only with T ≤ 8 and no perm, f32 output only without an
// epilogue. Otherwise the caller runs the unfused ops.
bool qgemm_supports(const QWeight& w, const QGemmArgs& a, QEpilogue e);

// The kernel of the T ≤ 8 shape (CudaOptions::quant_gemv picks it):
//   kMma:    qgemm_kernel with NB = 1: 4 warps per block, each loading a batch
//            of steps, then computing it; a chunk's zero point subtracted per
//            pair and its scale folded per 32 columns.
//   kStream: qgemv_stream_kernel: x and the meta (decoded once per block) staged
//            in shared memory, codes into the mma as stored with the zero point /
//            bias folded per group through Σx, blocks of 4 warps (up to 4 per SM)
//            with a ring of weight loads in flight per warp, K split into S = 1..8
//            slices per tile pair (the most that keep one wave), the slices of a
//            tile pair a thread-block cluster summed through distributed shared
//            memory in rank order (no global partials); the ring and the meta are
//            requested before waiting on the previous kernel (PDL). Where its
//            shared memory cannot fit, kMma runs.
//   kRow:    FP8 weights at T == 1: the batch-1 GEMV of cuda_gemv1.h on the e4m3
//            rows (Gemv1Weight::kFp8; 8 rows per block, K split over 128 threads,
//            every 16-byte weight load of a pass in flight before the x reads, f32
//            FMAs on the converted weights, each 16-column partial folded with its
//            group scale) with the same prologue and epilogues. Other codes, T > 1,
//            and what it does not take (the norm prologue with K > 4096): kMma.
//   kRowTc:  kRow with its products on the tensor cores (Gemv1Args::fp8_tc).
enum class QGemvPath { kMma, kStream, kRow, kRowTc };

// The kernel of the T > 8 shape (CudaOptions::quant_gemm picks it):
//   kV1: qgemm_kernel with NB = 4: two 16-row tiles x 32 tokens per block (a grid
//        dimension over 32-token tiles), x loaded from global memory per block, K
//        split over blocks with partial sums in global memory.
//   kV2: qgemm_batched_kernel (integer codes; FP8 runs kV1): 8 warps own 8 tile
//        pairs (256 rows) x up to 64 tokens, each weight byte read and dequantized
//        once per 64 tokens; x staged per step in a cp.async ring in shared memory
//        and shared by the 8 warps; a register ring of 4 steps of weights per warp;
//        K split into S <= 8 slices summed in a thread-block cluster through
//        distributed shared memory. Same arithmetic as kV1.
//   kWgmma: 4-bit codes at T >= 9 on wgmma, in passes of up to 128 tokens
//        (cuda_qgemm_wgmma.h: the dequantized weights as wgmma's register A
//        operand, x staged in shared memory as B); kV2 for everything it does not
//        take. Same arithmetic as kV1.
enum class QGemmPath { kV1, kV2, kWgmma };

// Launches out = x' · Wᵀ with epilogue `e`; programmatic dependent launch when
// `pdl` (cuda_launch.cuh). False (nothing launched) when !qgemm_supports.
// gemv_split > 0: kStream's number of K slices (1..8) instead of its own choice,
// for measurements (CudaOptions::quant_gemv_split). late_signal (optional): set to
// whether the kernel launched signals its dependents after its main loop instead
// of at its start (kWgmma's kernel), so that the caller may launch the kernel
// after it with PDL.
bool launch_qgemm(const QWeight& w, const QGemmArgs& a, QEpilogue e, int num_sms, bool pdl, cudaStream_t stream,
                  QGemvPath gemv_path = QGemvPath::kStream, int gemv_split = 0,
                  QGemmPath batched_path = QGemmPath::kV1, bool* late_signal = nullptr);

// W (dequantized, input-column order) into out [N, K] bf16.
void launch_qdequant_dense(const QWeight& w, void* out, cudaStream_t stream);

// out[t, :] = W[ids[t], :] as bf16 (input-column order), times `scale` rounded again
// to bf16 when scale != 1 (Gemma's embedding scale, as launch_embedding). out [T, K].
void launch_qembedding(const QWeight& w, const int32_t* ids, float scale, void* out, int T, cudaStream_t stream);

// out[t, j] = x[t, perm[j]]; x, out [T, K] bf16.
void launch_gather_cols(const void* x, const int32_t* perm, void* out, int T, int K, cudaStream_t stream);

// xq[t, k] = e4m3(x[t, k] / s[t]) saturated to ±448; s[t] = input_scale (static),
// or per token max(a / 448, 1 / (448 * 512)) with a = max|x[t, :]| capped at
// act_scale_ub when that is positive (vLLM's dynamic_per_token_scaled_fp8_quant).
void launch_quantize_fp8_rows(const void* x, int T, int K, bool static_input, float input_scale, float act_scale_ub,
                              void* xq, float* scales, cudaStream_t stream);

}  // namespace kr::cuda
