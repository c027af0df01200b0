// Programmatic dependent launch (Hopper): a kernel launched with launch_pdl may
// start while the previous kernel of the stream is still running; it must call
// pdl_wait() before touching anything that kernel writes. Every kernel of this
// backend calls pdl_launch_dependents() early (letting the next one get
// scheduled) and pdl_wait() before its first dependent read; GEMVs load their
// first weights (which no kernel writes) before waiting, hiding the ramp-up.
#pragma once

#include <cuda_runtime.h>

namespace kr::cuda {

__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void pdl_launch_dependents() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }

// False (default): plain stream order. KR_PDL=1 turns it on; set once by the backend.
extern bool g_pdl_enabled;
// PDL for batch-1 GEMV launches only (KR_PDL=2): they fetch their first weights
// while the previous kernel finishes; other kernels keep plain stream order.
extern bool g_pdl_gemv;

template <typename... Params, typename... Args>
void launch_pdl_if(bool pdl, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                   Args... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = pdl ? 1 : 0;
  cfg.attrs = &attr;
  cfg.numAttrs = 1;
  cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(args)...);
}

template <typename... Params, typename... Args>
void launch_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args... args) {
  launch_pdl_if(g_pdl_enabled, kernel, grid, block, smem, stream, args...);
}

}  // namespace kr::cuda
