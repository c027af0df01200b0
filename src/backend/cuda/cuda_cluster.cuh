// Thread-block cluster primitives (sm_90) for the kernels that merge K slices
// through distributed shared memory (cuda_qgemm.cu, cuda_fp8_gemm_wgmma.cu) and the decode
// stack's cluster MLP form (cuda_decode_stack_kernel.cuh):
// the cluster barrier and loads / stores to another block's shared memory. PTX
// ISA: "barrier.cluster", "mapa", "ld / st .shared::cluster". Included only by .cu
// files.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace kr::cuda {

__device__ __forceinline__ void cluster_arrive_relaxed() {
  asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");
}
__device__ __forceinline__ void cluster_arrive_release() {
  asm volatile("barrier.cluster.arrive.release.aligned;" ::: "memory");
}
__device__ __forceinline__ void cluster_wait_acquire() { asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory"); }

// The shared::cluster address of `p` (in this block's shared memory) in block `rank`.
__device__ __forceinline__ uint32_t cluster_smem_addr(const void* p, int rank) {
  const uint32_t local = static_cast<uint32_t>(__cvta_generic_to_shared(p));
  uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(local), "r"(rank));
  return remote;
}
__device__ __forceinline__ void st_cluster_f32x4(uint32_t addr, float4 v) {
  asm volatile("st.shared::cluster.v4.f32 [%0], {%1, %2, %3, %4};" ::"r"(addr), "f"(v.x), "f"(v.y), "f"(v.z), "f"(v.w)
               : "memory");
}
__device__ __forceinline__ void st_cluster_u32(uint32_t addr, uint32_t v) {
  asm volatile("st.shared::cluster.u32 [%0], %1;" ::"r"(addr), "r"(v) : "memory");
}
__device__ __forceinline__ float4 ld_cluster_f32x4(uint32_t addr) {
  float4 v;
  asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
               : "r"(addr)
               : "memory");
  return v;
}

// The float4 at byte offset `off` of the S ranks' copies of a buffer (remote[r]: its
// shared::cluster address in rank r, r < S <= kMaxS), summed in rank order (the
// order is fixed: bit-identical run to run). Every rank's load is requested before
// the sum: one DSMEM round trip, not S.
template <int kMaxS>
__device__ __forceinline__ float4 sum_ranks_f32x4(const uint32_t (&remote)[kMaxS], int S, uint32_t off) {
  float4 v[kMaxS];
#pragma unroll
  for (int r = 0; r < kMaxS; ++r) v[r] = r < S ? ld_cluster_f32x4(remote[r] + off) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  float4 sum = v[0];
#pragma unroll
  for (int r = 1; r < kMaxS; ++r)
    if (r < S) {
      sum.x += v[r].x;
      sum.y += v[r].y;
      sum.z += v[r].z;
      sum.w += v[r].w;
    }
  return sum;
}

}  // namespace kr::cuda
