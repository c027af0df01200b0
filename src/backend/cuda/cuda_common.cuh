// Small device helpers shared by the CUDA kernel files (included only by .cu files).
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

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

}  // namespace kr::cuda
