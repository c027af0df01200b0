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
