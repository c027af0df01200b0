// wgmma helpers shared by the wgmma GEMMs (cuda_fp8_gemm_wgmma.cu,
// cuda_qgemm_wgmma.cu): the proxy fence after cp.async writes, the warpgroup
// fence / commit / wait, the accumulator pin, and the shared-memory matrix
// descriptor of the 128-byte-swizzled K-major layout (PTX ISA, "Asynchronous
// Warpgroup Level Matrix Multiply-Accumulate", "Matrix Descriptor Format").
// Included only by .cu files (sm_90a).
#pragma once

#include <cstdint>

namespace kr::cuda {

// cp.async writes through the generic proxy, wgmma reads through the async proxy.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
// Waits until at most N of this warpgroup's wgmma groups are pending.
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Pins the accumulators' order against the wgmma asm (they are written
// asynchronously: no read may move above the wait, no write below the fence).
template <int M>
__device__ __forceinline__ void fence_regs(float (&d)[M]) {
#pragma unroll
  for (int i = 0; i < M; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// Descriptor of a K-major, 128-byte-swizzled operand at shared address `a`: bits
// 0-13 address >> 4, 32-45 the stride byte offset >> 4 (1024: 8 rows of 128
// bytes), 62-63 the swizzle mode (1: 128 bytes); the leading byte offset is unused.
__device__ __forceinline__ uint64_t sw128_desc(uint32_t a) {
  return static_cast<uint64_t>((a & 0x3FFFFu) >> 4) | (static_cast<uint64_t>(1024 >> 4) << 32) |
         (static_cast<uint64_t>(1) << 62);
}

}  // namespace kr::cuda
