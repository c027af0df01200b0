// Batch-1 GEMV with fused prologue and epilogue: the decode step at batch 1 is a
// chain of matrix-vector products, and every small kernel between two of them
// (RMSNorm, residual add, RoPE, KV store, SiLU·mul) costs a few µs of launch,
// ramp-up and drain for almost no bytes. These variants fold them into the GEMV
// that produces or consumes the vector, keeping the arithmetic of the unfused ops
// (same bf16 roundings, same order of rounding steps).
//
// out[n] = Σ_k x'[k] w[n, k], x' = x (no prologue) or rms_norm(x) * norm_w (kNorm).
//
// Threading: called only from the thread that owns the CudaBackend.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace kr::cuda {

enum class Gemv1Epilogue {
  kPlain,     // out[N] (bf16, or f32 with out_f32)
  kResidual,  // out[N] bf16, then residual[n] = bf16(residual[n] + out[n])
  kSwiglu,    // w = [gate; up] (N = 2 I): out[2 I] and act[i] = silu(gate_i) * up_i
  kRope,      // w = qkv projection (N = (Hq + 2 Hkv) D): out[N] with q and k rotated
              // (rotate_half, angle positions[0] * inv_freq[i] in double), k and v
              // also stored at slot slots[0] of the paged caches (skipped when < 0)
};

struct Gemv1Args {
  const void* x = nullptr;  // [K] bf16 (the residual row when norm_w is set)
  const void* w = nullptr;  // [N, K] bf16
  void* out = nullptr;      // [N]
  bool out_f32 = false;
  int N = 0, K = 0;
  // Prologue (optional): x' = rms_norm(x, eps) * norm_w; block 0 also writes x' to
  // `normed` [K] (what the unfused rms_norm would have left there).
  const void* norm_w = nullptr;  // [K] bf16
  float eps = 0.0f;
  void* normed = nullptr;
  void* normed_copy = nullptr;  // optional second destination of x' (a gathered row)
  void* residual = nullptr;  // kResidual: [N] bf16
  void* act = nullptr;       // kSwiglu: [N / 2] bf16
  // kRope:
  const int32_t* positions = nullptr;  // [1]
  const int32_t* slots = nullptr;      // [1]
  const float* inv_freq = nullptr;     // [head_dim / 2]
  void* k_cache = nullptr;             // [slots, Hkv * D] bf16
  void* v_cache = nullptr;
  int q_heads = 0, kv_heads = 0, head_dim = 0;
};

// Launches the fused GEMV. False (nothing launched) when the shapes do not fit
// the kernel (K % 8, odd N for kSwiglu, head_dim for kRope); the caller then runs
// the unfused ops.
bool launch_gemv1(const Gemv1Args& a, Gemv1Epilogue epi, cudaStream_t stream);
// Tuning bits (KR_GEMV1_TUNE): 2 = no PDL for norm-prologue launches,
// 4 = 8 rows per block for them.
void set_gemv1_tune(int bits);

}  // namespace kr::cuda
