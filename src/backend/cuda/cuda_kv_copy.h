// The host tier's block copies on the GPU (Backend::copy_kv_blocks). A block of
// the paged cache is 2L separate pieces (each layer's K and V), so a copy goes
// through a device staging buffer laid out like a host slot ([L][K, V][bytes]):
// out: one gather kernel, then one DMA per slot to pinned host memory; in: one
// DMA per slot, then one scatter kernel. Everything runs on a copy stream of
// its own (high priority, so the small kernels are not starved) ordered after
// the compute stream's work at the time of the call; each call records an
// event, its ticket. The compute stream waits for a ticket with
// cudaStreamWaitEvent, the host never does, and the DMA overlaps compute.
//
// This header is included by .cu files (C++17): the kernel's launch only;
// KvBlockCopier (cuda_kv_copier.h) drives it.
//
// Threading: owned by the CudaBackend, called from its thread.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace kr::cuda {

constexpr int kMaxKvCopyChunk = 128;  // blocks per gather/scatter launch

struct KvCopyChunk {
  int32_t blocks[kMaxKvCopyChunk];
  int32_t n = 0;
};

// to_staging: staging[i][l][kv] = layer (l, kv)'s block chunk.blocks[i]; else the reverse.
// layer_ptrs: device array [2L] of the K and V caches of each layer; block_bytes % 16 == 0.
void launch_kv_block_gather(void* const* layer_ptrs, int layers, size_t block_bytes, const KvCopyChunk& chunk,
                            void* staging, bool to_staging, cudaStream_t stream);

}  // namespace kr::cuda
