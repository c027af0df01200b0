// The activation quantization of the FP8 W8A8 GEMM (cuda_fp8_gemm.h), in one
// place for every kernel that makes FP8 rows: launch_quantize_fp8_rows
// (cuda_qgemm.h) and the kernels that write FP8 rows of their own output
// (Fp8RowsOut: the RMS norm, the GLU), so that all compute the same scale and
// bytes from the same bf16 values. vLLM's dynamic_per_token_scaled_fp8_quant
// (csrc/quantization/fp8/common.cu) defines the per-token scheme: the scale of a
// row is max(min(max|x|, ub) / 448, 1 / (448 * 512)), ub applied when positive.
// Included only by .cu files.
#pragma once

#include <cuda_fp8.h>

#include <cstdint>

namespace kr::cuda {

// A row's scale from the max |x| of its bf16 values (fmaxf over them: any order
// gives the same value).
__device__ __forceinline__ float fp8_act_scale(float amax, float ub) {
  if (ub > 0.0f) amax = fminf(amax, ub);
  return fmaxf(amax / 448.0f, 1.0f / (448.0f * 512.0f));
}

// e4m3(x / s), x / s rounded to nearest once, then to e4m3 (nearest even), saturated to ±448.
__device__ __forceinline__ uint8_t fp8_act_encode(float x, float s) {
  return __nv_cvt_float_to_fp8(__fdiv_rn(x, s), __NV_SATFINITE, __NV_E4M3);
}

// Max over a block (blockDim.x a multiple of 32), the same value in every thread.
// `scratch`: 32 floats of shared memory, not written again by the caller.
__device__ __forceinline__ float fp8_block_max(float v, float* scratch) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  float m = 0.0f;
  for (int i = 0; i < static_cast<int>(blockDim.x >> 5); ++i) m = fmaxf(m, scratch[i]);
  return m;
}

}  // namespace kr::cuda
