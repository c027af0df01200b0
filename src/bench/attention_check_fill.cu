// Device side of attention_check_fill.h.
#include <cuda_bf16.h>

#include "bench/attention_check_fill.h"

namespace kr::bench {
namespace {

__global__ void fill_codes_kernel(__nv_bfloat16* p, size_t n, uint64_t seed, float inv_scale) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    p[i] = __float2bfloat16(static_cast<float>(code_of(seed, i)) * inv_scale);  // exact: |code| < 2^8
}

}  // namespace

void fill_codes_bf16(void* p, size_t n, uint64_t seed, int shift, cudaStream_t stream) {
  if (n == 0) return;
  const size_t blocks = (n + 255) / 256;
  const unsigned grid = static_cast<unsigned>(blocks < 65536 ? blocks : 65536);
  fill_codes_kernel<<<grid, 256, 0, stream>>>(static_cast<__nv_bfloat16*>(p), n, seed, 1.0f / static_cast<float>(1 << shift));
}

}  // namespace kr::bench
