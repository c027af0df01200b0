// Asynchronous global -> shared copies (cp.async, sm_80+; PTX ISA "cp.async",
// "cp.async.commit_group", "cp.async.wait_group") shared by the kernels that stage
// operands through a shared-memory ring (the flash kernels, the quantized GEMMs,
// the FP8 GEMMs). Included only by .cu files.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace kr::cuda {

// The shared-window address of a pointer into this block's shared memory.
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared at `dst` past L1 (.cg) with the 128-byte L2 prefetch
// hint; zero-filled (nothing read) when bytes == 0.
__device__ __forceinline__ void cp_async16_l2(uint32_t dst, const void* src, int bytes) {
  asm volatile("cp.async.cg.shared.global.L2::128B [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes) : "memory");
}

// 16 bytes global -> shared past L1 (.cg), no prefetch hint (the decode stack kernel's
// weight rings, whose units are contiguous 2 KB runs).
__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_u32(dst)), "l"(src) : "memory");
}

// Closes the group of this thread's cp.async issued since the last commit.
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// Waits until at most N of this thread's committed groups are pending.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

}  // namespace kr::cuda
