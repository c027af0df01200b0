#include "backend/cuda/cuda_kv_copy.h"

#include "backend/cuda/cuda_launch.cuh"

namespace kr::cuda {
namespace {

// One CTA per (block, layer, K|V) piece, grid-strided; 16-byte vectors.
__global__ void kv_block_gather_kernel(void* const* layer_ptrs, int layers, size_t block_bytes, KvCopyChunk chunk,
                                       char* staging, bool to_staging) {
  pdl_launch_dependents();
  pdl_wait();
  const int pieces = chunk.n * layers * 2;
  const size_t vecs = block_bytes / 16;
  for (int p = blockIdx.x; p < pieces; p += gridDim.x) {
    const int i = p / (layers * 2);
    const int lk = p % (layers * 2);  // layer * 2 + (0: K, 1: V)
    char* cache = static_cast<char*>(layer_ptrs[lk]) + static_cast<size_t>(chunk.blocks[i]) * block_bytes;
    char* stage = staging + static_cast<size_t>(p) * block_bytes;
    const int4* src = reinterpret_cast<const int4*>(to_staging ? cache : stage);
    int4* dst = reinterpret_cast<int4*>(to_staging ? stage : cache);
    for (size_t v = threadIdx.x; v < vecs; v += blockDim.x) dst[v] = src[v];
  }
}

}  // namespace

void launch_kv_block_gather(void* const* layer_ptrs, int layers, size_t block_bytes, const KvCopyChunk& chunk,
                            void* staging, bool to_staging, cudaStream_t stream) {
  const int pieces = chunk.n * layers * 2;
  if (pieces == 0) return;
  const int grid = pieces < 1024 ? pieces : 1024;
  launch(false, kv_block_gather_kernel, dim3(grid), dim3(256), 0, stream, layer_ptrs, layers, block_bytes, chunk,
         static_cast<char*>(staging), to_staging);
}

}  // namespace kr::cuda
