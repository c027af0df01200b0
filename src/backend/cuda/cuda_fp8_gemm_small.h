// FP8 W8A8 GEMM for few activation rows (decode batches, T <= 64): the same math
// as Fp8Gemm (cuda_fp8_gemm.h),
//   out[t, n] (bf16) = bf16((Σ_k xq[t, k] wq[n, k]) · sw[n] · sx[t])
// with e4m3 operands and f32 accumulation, but shaped for streaming the weights
// once at HBM bandwidth: at T <= 64 the GEMM reads N·K weight bytes and only T·K
// activation bytes, and cuBLASLt's 128x128 tiles leave most SMs idle for N = 4096.
//
// Kernel (cuda_fp8_gemm_small.cu): the e4m3 operands converted to f16 (exact) for
// mma.sync m16n8k16 with f32 accumulation, which is what sm_90 runs for an e4m3
// mma.sync, each fragment converted once. A warp owns 16 weight rows (32 at T > 16)
// and all T tokens (ceil(T/8) token tiles of 8, rounded to 1, 2, 4 or 8); a block of
// 8 warps owns 128 (256) rows and one K slice, its weights streaming through a
// cp.async ring in shared memory (64 to 128 KB a block); the grid is (row blocks, K slices),
// the split chosen so that the blocks fill the GPU in whole waves and the f32
// partials fit the caller's workspace. Slices are reduced deterministically (the
// last block of a row block to arrive sums the partials in slice order), so the
// result is bit-identical run to run.
//
// Off by default (CudaOptions::fp8_small_gemm_max_tokens = 0): the wgmma GEMM
// (cuda_fp8_gemm_wgmma.h), which multiplies e4m3 without the f16 widening, is
// faster on the H200 at every T this kernel takes; kept to compare against.
//
// Threading: called only from the thread that owns the CudaBackend.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

namespace kr::cuda {

// Largest T the kernel takes.
constexpr int kFp8SmallMaxTokens = 64;

struct Fp8SmallGemmArgs {
  const void* wq = nullptr;  // [N, ld_w] e4m3 row-major, K columns used (16-byte aligned rows)
  int N = 0, K = 0, ld_w = 0;
  const float* sw = nullptr;  // [N] f32 per-row weight scales
  const void* xq = nullptr;   // [T, K] e4m3 row-major (16-byte aligned)
  const float* sx = nullptr;  // [T] f32 per-token activation scales
  int T = 0;
  void* out = nullptr;  // [T, N] bf16
  // Split-K scratch: f32 partials and arrival counters, zero between launches
  // (each launch leaves them zero).
  float* partials = nullptr;
  size_t partial_floats = 0;
  int* counters = nullptr;
  int counter_count = 0;
  int num_sms = 0;
  bool pdl = false;  // programmatic dependent launch (cuda_launch.cuh)
  int force_split = 0;  // K slices forced (0: the kernel's own choice); for tests
};

// N % 16 == 0, K % 16 == 0, ld_w % 16 == 0, ld_w >= K: the shapes both decode-size
// FP8 GEMMs take (the operands are not looked at).
bool fp8_gemm_shape_ok(const Fp8SmallGemmArgs& a);

// Whether the kernel takes this shape: 1 <= T <= 64, fp8_gemm_shape_ok, 16-byte
// aligned operands.
bool fp8_small_gemm_supports(const Fp8SmallGemmArgs& a);

// Sets each kernel variant's shared memory limit and queries (once a process) how
// many blocks of it an SM holds, which the split uses; call it where no stream is
// being captured (the backend's constructor), so that a first launch inside a graph
// capture makes no such call.
void prepare_fp8_small_gemm();

// Enqueues the GEMM on `stream`; false (nothing enqueued) when the shape is not
// supported or the partials of the split do not fit the workspace.
bool launch_fp8_small_gemm(const Fp8SmallGemmArgs& a, cudaStream_t stream);

}  // namespace kr::cuda
