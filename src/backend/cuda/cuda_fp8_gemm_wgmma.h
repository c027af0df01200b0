// FP8 W8A8 GEMM for decode batches of 9..64 rows on Hopper's asynchronous
// warpgroup tensor-core instruction (wgmma): the same math and arguments as the
// small-T GEMM (cuda_fp8_gemm_small.h),
//   out[t, n] (bf16) = bf16((Σ_k xq[t, k] wq[n, k]) · sw[n] · sx[t]),
// e4m3 operands, f32 accumulation.
//
// Why a second kernel: at T = 64 the GEMM does 128 FLOP per weight byte, so
// streaming the weights at HBM speed (4.8 TB/s) takes ~600 TFLOP/s of e4m3
// products. mma.sync has no e4m3 form on sm_90 (the small-T kernel converts to
// f16, whose mma.sync peak is about that), while wgmma multiplies e4m3 at twice
// the f16 rate. cuBLASLt's FP8 kernels use wgmma but tile 128 x 128 without a K
// split: 32 CTAs for N = 4096 on 132 SMs.
//
// Kernel (cuda_fp8_gemm_wgmma.cu): the product is computed transposed, D[n, t] =
// W[n, :] · X[t, :], so that the weight rows fill wgmma's M = 64 and the tokens
// its N (16, 32 or 64). A CTA of two warpgroups owns 128 weight rows and one K
// slice; both operands stream through a cp.async ring in shared memory in the
// 128-byte swizzled K-major layout wgmma reads; the grid is (K slices, row tiles),
// the S <= 8 slices of a row tile a thread-block cluster that sums them through
// distributed shared memory in rank order (deterministic).
//
// Threading: called only from the thread that owns the CudaBackend.
#pragma once

#include <string>

#include <cuda_runtime_api.h>

#include "backend/cuda/cuda_fp8_gemm_small.h"

namespace kr::cuda {

// Largest T the kernel takes.
constexpr int kFp8WgmmaMaxTokens = 64;

// Whether the kernel takes this shape: 1 <= T <= 64 and what
// fp8_small_gemm_supports asks (N % 16, K % 16, ld_w % 16, 16-byte alignment).
bool fp8_wgmma_gemm_supports(const Fp8SmallGemmArgs& a);

// Sets the kernels' shared memory limits and queries how many CTAs an SM holds
// (once a process); call where no stream is being captured.
void prepare_fp8_wgmma_gemm();

// The launch it would make for `a`'s shape (T, N, K, ld_w, num_sms, force_split;
// the operands are not looked at), in words ("5 slices x 7 stages, ring 4"); for
// benchmarks.
std::string fp8_wgmma_gemm_plan(const Fp8SmallGemmArgs& a);

// The RoPE + KV-store epilogue of a q/k/v projection (Backend::qkv_rope_store
// without per-head q/k norms), for heads of D = 128 dims: a CTA's 128 rows are one
// head, whose dims i and i + 64 lie in its two warpgroups. out is qkv [T, (Hq + 2
// Hkv) 128] (N = (Hq + 2 Hkv) 128); each output is rounded to bf16 as the GEMM
// stores it, gets its bias (bf16, as rope_kernel adds it), then q and k heads are
// rotated (rope_rotate) by cos_sin, and k and v heads are also stored into the
// cache at slots[t] (skipped where negative; kv_store: bf16, or e4m3 over the
// layer's scale). The same bits as the GEMM followed by launch_rope.
struct Fp8QkvRope {
  const float2* cos_sin = nullptr;  // [T, 64]: (cos, sin) of pair i at token t's position (launch_rope_table)
  const void* bias = nullptr;       // [(Hq + 2 Hkv) 128] bf16, or null
  const int32_t* slots = nullptr;   // [T] cache slot of token t
  void* k_cache = nullptr;          // [slots, Hkv 128] bf16, or e4m3 bytes with kv_fp8
  void* v_cache = nullptr;
  bool kv_fp8 = false;
  float k_scale = 1.0f, v_scale = 1.0f;
  int q_heads = 0, kv_heads = 0;
};
constexpr int kFp8QkvRopeHeadDim = 128;

// Whether launch_fp8_wgmma_gemm(a, stream, rope) would enqueue: the shape is
// supported, a launch plan exists, and with `rope` N = (Hq + 2 Hkv) 128 with its
// pointers set.
bool fp8_wgmma_gemm_takes(const Fp8SmallGemmArgs& a, const Fp8QkvRope* rope = nullptr);

// Enqueues the GEMM on `stream` (with `rope`: and its RoPE + KV-store epilogue);
// false (nothing enqueued) when fp8_wgmma_gemm_takes says no. Fp8SmallGemmArgs'
// partials and counters are not used (force_split: at most 8 slices).
bool launch_fp8_wgmma_gemm(const Fp8SmallGemmArgs& a, cudaStream_t stream, const Fp8QkvRope* rope = nullptr);

}  // namespace kr::cuda
