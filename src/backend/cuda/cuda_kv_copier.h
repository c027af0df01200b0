// KvBlockCopier: the copy stream, staging buffer and tickets of the host tier's
// block copies on the GPU (cuda_kv_copy.h says how a copy runs).
//
// Threading: owned by the CudaBackend, called from its thread.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <utility>
#include <vector>

#include "backend/backend.h"

namespace kr::cuda {

class KvBlockCopier {
 public:
  explicit KvBlockCopier(cudaStream_t compute);
  ~KvBlockCopier();  // waits for its copies
  KvBlockCopier(const KvBlockCopier&) = delete;
  KvBlockCopier& operator=(const KvBlockCopier&) = delete;

  uint64_t copy(std::span<const KvLayer> layers, void* host, std::span<const KvBlockCopy> copies, bool to_host);
  bool done(uint64_t ticket);
  // Later work on `stream` runs after the copies of `ticket`.
  void order_after(cudaStream_t stream, uint64_t ticket);
  void synchronize();

 private:
  void prepare(std::span<const KvLayer> layers);
  void retire();

  cudaStream_t compute_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t compute_done_ = nullptr;
  void** layer_ptrs_dev_ = nullptr;  // [2L]
  std::vector<void*> layer_ptrs_;    // host copy, to notice a different cache
  size_t block_bytes_ = 0;           // one layer's K (or V) block
  char* staging_ = nullptr;
  int32_t staging_slots_ = 0;
  uint64_t last_ticket_ = 0, done_ticket_ = 0;
  std::deque<std::pair<uint64_t, cudaEvent_t>> in_flight_;
  std::vector<cudaEvent_t> spare_events_;
};

}  // namespace kr::cuda
