// Batch-1 GEMV with fused prologue and epilogue: the decode step at batch 1 is a
// chain of matrix-vector products, and every small kernel between two of them
// (RMSNorm, RoPE, KV store, SiLU·mul) costs a few µs of launch, ramp-up and drain
// for almost no bytes. These variants fold them into the GEMV that produces or
// consumes the vector, keeping the arithmetic of the unfused ops (same bf16
// roundings, same order of rounding steps). The CUDA backend's fused ops
// (Backend::qkv_rope_store, Backend::matmul_silu_mul) launch them at batch 1.
//
// out[n] = Σ_k x'[k] w[n, k] (+ bias[n]), x' = x (no prologue) or the RMS norm of
// x with norm_w (kNorm; either norm kind). The weight is bf16, or FP8 e4m3 with f32
// scales as cuda_qgemm.h's QWeight stores it (Gemv1Weight::kFp8: the batch-1 path
// of FP8 checkpoints, CudaOptions::quant_gemv kRow; w[n, k] = e4m3 · scale of its
// group, no activation quantization; with Gemv1Args::fp8_tc the products run on
// the tensor cores).
//
// Threading: called only from the thread that owns the CudaBackend.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace kr::cuda {

enum class Gemv1Epilogue {
  kPlain,       // out[N] (bf16, or f32 with out_f32)
  kSwiglu,      // w = [gate; up] (N = 2 I): out[2 I] and act[i] = f(gate_i) * up_i, f = `activation`
  kRope,        // w = qkv projection (N = (Hq + 2 Hkv) D): out[N] (+ bias) with q and k rotated
                // (rotate_half, angle positions[0] * inv_freq[i] in double), k and v
                // also stored at slot slots[0] of the paged caches (skipped when < 0)
  kRopeQkNorm,  // kRope with per-head RMS norms of q and k (q_norm_w, k_norm_w) before the
                // rotation: the blocks of a head write its projection, and the last of
                // them to finish normalises, rotates and stores the whole head
};

// How Gemv1Args::w stores the weight.
enum class Gemv1Weight {
  kBf16,  // [N, K] bf16
  kFp8,   // e4m3 rows of w_ld bytes (qgemm_layout.h's FP8 [Np, Kp]; bytes past K are zero),
          // row n times w_scale[q_meta_index(n / 16, w_groups, k / w_group, n % 16)] (f32)
};

struct Gemv1Args {
  const void* x = nullptr;  // [K] bf16 (the row to normalise when norm_w is set)
  const void* w = nullptr;  // [N, K] bf16, or as `weight` says
  Gemv1Weight weight = Gemv1Weight::kBf16;
  const float* w_scale = nullptr;  // kFp8: [Np / 16, w_groups, 16] f32
  int w_ld = 0;                    // kFp8: bytes per row (a multiple of 16, >= K)
  int w_group = 0, w_groups = 0;   // kFp8: columns per scale group (a multiple of 16), groups per row
  // kFp8: the products on the tensor cores (mma.sync on f16 operands, f32 sums, one
  // weight vector per thread and pass) instead of f32 FMAs, where the groups allow it
  // (one per 64 columns or coarser) and a norm prologue's row fits one pass (K <= 2048).
  bool fp8_tc = false;
  void* out = nullptr;      // [N]
  bool out_f32 = false;
  int N = 0, K = 0;
  // Prologue (optional): x' = rms_norm(x, eps) * norm_w; block 0 also writes x' to
  // `normed` [K] (what the unfused rms_norm would have left there).
  const void* norm_w = nullptr;  // [K] bf16
  float eps = 0.0f;
  int norm_kind = 0;  // kNormTimesWeight / kNormTimesOnePlusWeight (cuda_kernels.h)
  void* normed = nullptr;
  void* act = nullptr;  // kSwiglu: [N / 2] bf16
  int activation = 0;   // kSwiglu: kActSilu / kActGeluTanh (cuda_kernels.h)
  const void* bias = nullptr;  // kRope, kRopeQkNorm: [N] bf16 (optional), added to the bf16 projection
                               // and rounded again, as the unfused matmul + rope_kernel do
  // kRopeQkNorm: [head_dim] bf16 weights, their eps and kind.
  const void* q_norm_w = nullptr;
  const void* k_norm_w = nullptr;
  float qk_eps = 0.0f;
  int qk_kind = 0;
  // kRope:
  const int32_t* positions = nullptr;  // [1]
  const int32_t* slots = nullptr;      // [1]
  const float* inv_freq = nullptr;     // [head_dim / 2]
  void* k_cache = nullptr;             // [slots, Hkv * D] bf16
  void* v_cache = nullptr;
  bool kv_fp8 = false;                 // caches of e4m3(x / k_scale or v_scale) bytes (cuda_kv_fp8.cuh)
  float k_scale = 1.0f, v_scale = 1.0f;
  int q_heads = 0, kv_heads = 0, head_dim = 0;
};

// Launches the fused GEMV, with programmatic dependent launch when `pdl`
// (cuda_launch.cuh). False (nothing launched) when the shapes do not fit the
// kernel (K % 8, K too long for the norm prologue, odd N for kSwiglu, head_dim for
// kRope, more q and k heads than kRopeQkNorm counts; kFp8: its strides and group,
// kRopeQkNorm); the caller then runs the unfused ops. The norm prologue keeps the
// row in registers: K <= 4096 (bf16 and kFp8 alike).
bool launch_gemv1(const Gemv1Args& a, Gemv1Epilogue epi, bool pdl, cudaStream_t stream);

}  // namespace kr::cuda
