// launch_cooperative: enqueues a kernel with every CTA resident at once (a cooperative
// launch), as the persistent kernels of kr-cuda-bench's design studies need: their CTAs
// wait on each other. Included by the bench's CUDA translation units
// (persistent_gemv_bench.cu, mega_gemv_bench.cu). Threading: the caller's.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "backend/cuda/cuda_check.h"

namespace kr {

template <typename... Params, typename... Args>
void launch_cooperative(void (*kernel)(Params...), int grid, int block, size_t smem, cudaStream_t stream,
                        Args... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(grid));
  cfg.blockDim = dim3(static_cast<unsigned>(block));
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeCooperative;
  attr.val.cooperative = 1;
  cfg.attrs = &attr;
  cfg.numAttrs = 1;
  KR_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(args)...));
}

}  // namespace kr
