// Kernel launches of the CUDA backend (included only by .cu files): launch()
// enqueues a kernel and checks the launch with KR_CUDA_CHECK.
//
// Programmatic dependent launch (Hopper): a kernel launched with pdl = true may
// start while the previous kernel of the stream is still running; it must call
// pdl_wait() before touching anything that kernel writes. Every kernel of this
// backend calls pdl_launch_dependents() early (letting a PDL kernel after it get
// scheduled; the 4-bit wgmma GEMM after its main loop instead) and pdl_wait()
// before its first dependent read and its first write.
// The batch-1 GEMVs, launched with PDL (CudaOptions::pdl), load their first weights
// (which no kernel writes) before waiting, hiding their ramp-up; the norm kernels of
// small steps are too (CudaOptions::pdl_norms), so that their one block is resident
// and waiting when the GEMV before them ends; and the norm and flash decode kernels
// right after the 4-bit wgmma GEMM (CudaOptions::pdl_after_late_signal).
//
// Threading: called only from the thread that owns the CudaBackend.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/cuda_check.h"

namespace kr::cuda {

__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void pdl_launch_dependents() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }

// Launch attributes: programmatic dependent launch allowed (pdl) or not; clusters of
// x blocks along the grid's x.
inline cudaLaunchAttribute pdl_attr(bool pdl) {
  cudaLaunchAttribute a{};
  a.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  a.val.programmaticStreamSerializationAllowed = pdl ? 1 : 0;
  return a;
}
inline cudaLaunchAttribute cluster_x_attr(int x) {
  cudaLaunchAttribute a{};
  a.id = cudaLaunchAttributeClusterDimension;
  a.val.clusterDim.x = static_cast<unsigned>(x);
  a.val.clusterDim.y = 1;
  a.val.clusterDim.z = 1;
  return a;
}

// Enqueues `kernel` with the blocks along x in clusters of `cluster_x` (1: no
// cluster) and checks the launch.
template <typename... Params, typename... Args>
void launch_cluster_x(bool pdl, int cluster_x, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                      cudaStream_t stream, Args... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attrs[2] = {pdl_attr(pdl), cluster_x_attr(cluster_x)};
  cfg.attrs = attrs;
  cfg.numAttrs = cluster_x > 1 ? 2 : 1;
  KR_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(args)...));
}

// How many clusters of s blocks (grid x = s, `threads` a block, `smem` bytes of
// dynamic shared memory) of `kernel` the GPU holds at once, for s = 1 .. max_s, into
// clusters[s] (0 where cudaOccupancyMaxActiveClusters fails). Host only; the
// kernel's shared-memory attribute must already allow `smem`.
template <typename... Params>
void query_max_active_clusters(void (*kernel)(Params...), int threads, size_t smem, int max_s, int* clusters) {
  for (int s = 1; s <= max_s; ++s) {
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(static_cast<unsigned>(s));
    cfg.blockDim = dim3(static_cast<unsigned>(threads));
    cfg.dynamicSmemBytes = smem;
    cudaLaunchAttribute attr = cluster_x_attr(s);
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    if (cudaOccupancyMaxActiveClusters(&clusters[s], kernel, &cfg) != cudaSuccess) {
      (void)cudaGetLastError();  // not sticky: clear it
      clusters[s] = 0;
    }
  }
}

// launch_cluster_x without clusters.
template <typename... Params, typename... Args>
void launch(bool pdl, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
            Args... args) {
  launch_cluster_x(pdl, 1, kernel, grid, block, smem, stream, args...);
}

}  // namespace kr::cuda
