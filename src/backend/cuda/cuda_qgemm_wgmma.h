// The 4-bit weight x bf16 activation GEMM of 9 rows or more on wgmma
// (QGemmPath::kWgmma, cuda_qgemm.h): out[T, N] = x[T, K] · Wᵀ with W's 4-bit
// codes (AWQ, GPTQ, compressed-tensors W4A16, MLX-4) in the repacked layout of
// qgemm_layout.h, dequantized in registers to bf16 ((q - z) s, or q s + b for MLX,
// the arithmetic of the kV1 / kV2 kernels) and fed to wgmma as its A operand from
// registers; the activations are B, staged in shared memory. The epilogues are the
// other kernels' (qgemm_epilogue): plain, GLU, bias + RoPE + KV store.
//
// Why: at 64 tokens the mma.sync kernel (kV2) issued ~8 instructions per HMMA and
// moved 0.2-0.6 TB/s of 4-bit weights (docs/performance.md); one wgmma m64n64k16
// does the work of 32 HMMAs. On the H200 it beats kV2 end to end from 9 rows
// (tokens are padded to 64, or to 128 above 64; the kernel's time hardly depends
// on them), at two CTAs an SM (docs/performance.md has the measurements).
//
// Threading: called only from the thread that owns the CudaBackend.
#pragma once

#include <cuda_runtime_api.h>

#include "backend/cuda/cuda_qgemm.h"

namespace kr::cuda {

// Rows of tokens the kernel takes: from kQWgmmaMinTokens on, in passes of at most
// kQWgmmaPassTokens (wgmma N = 128; N = 64 for a pass of at most 64), each pass
// reading the whole weight. The caller (CudaOptions::quant_dense_min_tokens) says
// from how many rows a dequantized copy and cuBLAS take over.
constexpr int kQWgmmaMinTokens = kQGemvMaxTokens + 1;  // fewer: the GEMVs (launch_qgemm)
constexpr int kQWgmmaPassTokens = 128;

// Launches the kernel (one launch a pass); false (nothing launched) where it does
// not apply: other codes than 4-bit, T < 9, a norm prologue, f32 output, or a shape
// whose meta does not fit its shared memory. The caller then runs kV2.
bool launch_qgemm_wgmma(const QWeight& w, const QGemmArgs& a, QEpilogue e, int num_sms, bool pdl,
                        cudaStream_t stream);

}  // namespace kr::cuda
