// Small device helpers shared by the CUDA kernel files (included only by .cu files).
#pragma once

#include <cuda_bf16.h>

#include <cfloat>
#include <cstdint>

#include "backend/cuda/cuda_kernels.h"

namespace kr::cuda {

// 8 bf16 in one 16-byte word: the unit of every vectorised bf16 load and store.
union Vec8 {
  uint4 u;
  __nv_bfloat16 h[8];
};

// Sum over the 32 lanes of a warp, returned to every lane.
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// acc[0, 8) += w * (x0, x1), one fma each (attention merges of 8 output dims).
__device__ __forceinline__ void fma8(float (&acc)[8], float w, const float4& x0, const float4& x1) {
  acc[0] = fmaf(w, x0.x, acc[0]);
  acc[1] = fmaf(w, x0.y, acc[1]);
  acc[2] = fmaf(w, x0.z, acc[2]);
  acc[3] = fmaf(w, x0.w, acc[3]);
  acc[4] = fmaf(w, x1.x, acc[4]);
  acc[5] = fmaf(w, x1.y, acc[5]);
  acc[6] = fmaf(w, x1.z, acc[6]);
  acc[7] = fmaf(w, x1.w, acc[7]);
}

// The gated MLP's activation of a gate value (kActSilu / kActGeluTanh), in float:
// silu(x) = x / (1 + e^-x); gelu_tanh(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
__device__ __forceinline__ float glu_activation(float x, int activation) {
  if (activation == kActGeluTanh) return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
  return x / (1.0f + __expf(-x));
}

// A value x normalised by inv times its norm weight, rounded as HF rounds it
// (kind: kNormTimesWeight or kNormTimesOnePlusWeight; see RmsNormArgs).
__device__ __forceinline__ __nv_bfloat16 norm_apply(float x, float inv, __nv_bfloat16 w, int kind) {
  if (kind == kNormTimesOnePlusWeight) return __float2bfloat16(x * inv * (1.0f + __bfloat162float(w)));
  // HF LlamaRMSNorm: normalise in float, round to bf16, then multiply by the weight.
  return __float2bfloat16(__bfloat162float(__float2bfloat16(x * inv)) * __bfloat162float(w));
}

// RoPE's cosine and sine of pair i at `pos`: angle = pos * inv_freq[i] in double.
__device__ __forceinline__ void rope_cos_sin(int pos, float inv_freq, float* c, float* s) {
  double sd, cd;
  sincos(static_cast<double>(pos) * static_cast<double>(inv_freq), &sd, &cd);
  *c = static_cast<float>(cd);
  *s = static_cast<float>(sd);
}

// The rotation of a RoPE pair (a, b) = (x[i], x[i + D/2]) by (c, s), rounded to bf16.
// Every kernel that rotates calls this, with the FMAs spelled out (no contraction
// left to the compiler), so that the fused GEMV epilogues and rope_kernel agree
// bit for bit.
__device__ __forceinline__ void rope_rotate(float a, float b, float c, float s, __nv_bfloat16* ra,
                                            __nv_bfloat16* rb) {
  *ra = __float2bfloat16(__fmaf_rn(a, c, -__fmul_rn(b, s)));
  *rb = __float2bfloat16(__fmaf_rn(b, c, __fmul_rn(a, s)));
}

// A projection output with its bias, as the unfused ops leave it: the matmul's
// bf16 result, plus the bf16 bias in float, rounded to bf16 again (rope_kernel).
__device__ __forceinline__ __nv_bfloat16 add_bias(__nv_bfloat16 y, __nv_bfloat16 bias) {
  return __float2bfloat16(__bfloat162float(y) + __bfloat162float(bias));
}

// One RoPE pair's share of a head's sum of squares (the per-head q/k norm), in one
// fixed arithmetic for rope_kernel and the GEMV epilogue.
__device__ __forceinline__ float pair_square_sum(float a, float b) { return __fmaf_rn(a, a, __fmul_rn(b, b)); }

// Running (max, index of the max, Σ exp(x - max)) of a stream of logits: one pass
// computes the argmax (lowest index on ties) and the log-sum-exp together.
struct ArgmaxLse {
  float m = -FLT_MAX;
  int i = 0x7fffffff;
  float s = 0.0f;
  __device__ void add(float x, int idx) {
    if (x > m) {
      s = s * __expf(m - x) + 1.0f;
      m = x;
      i = idx;
    } else {
      s += __expf(x - m);
      if (x == m && idx < i) i = idx;
    }
  }
  __device__ void merge(const ArgmaxLse& o) {
    if (o.s == 0.0f) return;
    if (s == 0.0f) {
      *this = o;
      return;
    }
    const float mx = fmaxf(m, o.m);
    s = s * __expf(m - mx) + o.s * __expf(o.m - mx);
    if (o.m > m || (o.m == m && o.i < i)) i = o.i;
    m = mx;
  }
};

}  // namespace kr::cuda
