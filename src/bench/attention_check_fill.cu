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

__global__ void refill_rows_late_kernel(__nv_bfloat16* a, uint64_t seed_a, __nv_bfloat16* b, uint64_t seed_b,
                                        float inv_scale, const int64_t* rows, int n_rows, int row_elems,
                                        long long spin_cycles) {
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  const long long t0 = clock64();
  while (clock64() - t0 < spin_cycles) {
  }
  for (int r = 0; r < n_rows; ++r) {
    const int64_t base = rows[r];
    for (int e = threadIdx.x; e < row_elems; e += blockDim.x) {
      const uint64_t i = static_cast<uint64_t>(base + e);
      a[i] = __float2bfloat16(static_cast<float>(code_of(seed_a, i)) * inv_scale);
      b[i] = __float2bfloat16(static_cast<float>(code_of(seed_b, i)) * inv_scale);
    }
  }
}

}  // namespace

void refill_rows_late(void* a, uint64_t seed_a, void* b, uint64_t seed_b, int shift, const int64_t* rows, int n_rows,
                      int row_elems, long long spin_cycles, cudaStream_t stream) {
  refill_rows_late_kernel<<<1, 256, 0, stream>>>(static_cast<__nv_bfloat16*>(a), seed_a,
                                                 static_cast<__nv_bfloat16*>(b), seed_b,
                                                 1.0f / static_cast<float>(1 << shift), rows, n_rows, row_elems,
                                                 spin_cycles);
}

void fill_codes_bf16(void* p, size_t n, uint64_t seed, int shift, cudaStream_t stream) {
  if (n == 0) return;
  const size_t blocks = (n + 255) / 256;
  const unsigned grid = static_cast<unsigned>(blocks < 65536 ? blocks : 65536);
  fill_codes_kernel<<<grid, 256, 0, stream>>>(static_cast<__nv_bfloat16*>(p), n, seed, 1.0f / static_cast<float>(1 << shift));
}

}  // namespace kr::bench
