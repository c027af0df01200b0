// The activation quantization of the FP8 W8A8 GEMM (cuda_fp8_gemm.h), in one
// place for every kernel that makes FP8 rows: launch_quantize_fp8_rows
// (cuda_qgemm.h) and the kernels that write FP8 rows of their own output
// (Fp8RowsOut: the RMS norm, the GLU, the flash decode attention's last-arriver
// tail), so that all compute the same scale and
// bytes from the same bf16 values. vLLM's dynamic_per_token_scaled_fp8_quant
// (csrc/quantization/fp8/common.cu) defines the per-token scheme: the scale of a
// row is max(min(max|x|, ub) / 448, 1 / (448 * 512)), ub applied when positive.
// Included only by .cu files.
#pragma once

#include <cuda_bf16.h>
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

// One bf16 row x [K] (K % 8 == 0, 16-byte aligned) quantized by a whole block
// (blockDim.x a multiple of 32): codes [K] e4m3 and *scale, the scale input_scale
// (static_input) or fp8_act_scale(max |x|, ub). launch_quantize_fp8_rows runs it
// once per row; the flash decode kernel's tail (cuda_flash_decode.cu) on the rows
// its blocks just wrote, with kL2: loads by __ldcg (L2, past this SM's L1).
// `scratch`: 32 floats of shared memory. Ends with a barrier, so that a block may
// quantize rows one after another with the same scratch.
template <bool kL2 = false>
__device__ __forceinline__ void fp8_quantize_row(const __nv_bfloat16* x, int K, bool static_input, float input_scale,
                                                 float ub, uint8_t* codes, float* scale, float* scratch) {
  const uint4* xv = reinterpret_cast<const uint4*>(x);
  auto load = [xv](int v) {
    if constexpr (kL2) return __ldcg(xv + v);
    else return xv[v];
  };
  union Row8 {
    uint4 u;
    __nv_bfloat16 h[8];
  };
  float s = input_scale;
  if (!static_input) {
    float amax = 0.0f;
    for (int v = threadIdx.x; v < K / 8; v += blockDim.x) {
      Row8 r;
      r.u = load(v);
#pragma unroll
      for (int e = 0; e < 8; ++e) amax = fmaxf(amax, fabsf(__bfloat162float(r.h[e])));
    }
    s = fp8_act_scale(fp8_block_max(amax, scratch), ub);
  }
  if (threadIdx.x == 0) *scale = s;
  for (int v = threadIdx.x; v < K / 8; v += blockDim.x) {
    Row8 r;
    r.u = load(v);
    union {
      uint2 u;
      uint8_t b[8];
    } q;
#pragma unroll
    for (int e = 0; e < 8; ++e) q.b[e] = fp8_act_encode(__bfloat162float(r.h[e]), s);
    reinterpret_cast<uint2*>(codes)[v] = q.u;
  }
  __syncthreads();  // scratch free for the next row
}

}  // namespace kr::cuda
