#include "backend/cuda/cuda_kv_copier.h"

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_kv_copy.h"

namespace kr::cuda {
namespace {

constexpr size_t kMaxStagingBytes = size_t{128} << 20;  // taken from the 1 GiB the KV budget leaves free

}  // namespace

KvBlockCopier::KvBlockCopier(cudaStream_t compute) : compute_(compute) {
  int least = 0, greatest = 0;
  KR_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  KR_CUDA_CHECK(cudaStreamCreateWithPriority(&stream_, cudaStreamNonBlocking, greatest));
  KR_CUDA_CHECK(cudaEventCreateWithFlags(&compute_done_, cudaEventDisableTiming));
}

KvBlockCopier::~KvBlockCopier() {
  cudaStreamSynchronize(stream_);
  for (auto& [t, e] : in_flight_) cudaEventDestroy(e);
  for (cudaEvent_t e : spare_events_) cudaEventDestroy(e);
  cudaEventDestroy(compute_done_);
  cudaFree(layer_ptrs_dev_);
  cudaFree(staging_);
  cudaStreamDestroy(stream_);
}

void KvBlockCopier::prepare(std::span<const KvLayer> layers) {
  std::vector<void*> ptrs;
  for (const KvLayer& l : layers) {
    ptrs.push_back(l.k.data);
    ptrs.push_back(l.v.data);
  }
  if (ptrs == layer_ptrs_) return;
  KR_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the old table and staging may still be read
  cudaFree(layer_ptrs_dev_);
  cudaFree(staging_);
  layer_ptrs_ = ptrs;
  block_bytes_ = layers[0].k.rows(0, 1).bytes();
  KR_CHECK_MSG(block_bytes_ % 16 == 0, "KV block copies need blocks of a multiple of 16 bytes");
  KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&layer_ptrs_dev_), ptrs.size() * sizeof(void*)));
  // On stream_ (non-blocking: it would not wait for a legacy-stream cudaMemcpy's DMA).
  KR_CUDA_CHECK(
      cudaMemcpyAsync(layer_ptrs_dev_, ptrs.data(), ptrs.size() * sizeof(void*), cudaMemcpyHostToDevice, stream_));
  const size_t slot_bytes = 2 * layers.size() * block_bytes_;
  staging_slots_ = static_cast<int32_t>(std::clamp<size_t>(kMaxStagingBytes / slot_bytes, 1, kMaxKvCopyChunk));
  KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&staging_), static_cast<size_t>(staging_slots_) * slot_bytes));
}

uint64_t KvBlockCopier::copy(std::span<const KvLayer> layers, void* host, std::span<const KvBlockCopy> copies,
                             bool to_host) {
  if (copies.empty() || layers.empty()) return 0;
  prepare(layers);
  // After everything the compute stream has been given: the blocks' last writes, the last reads of reused blocks.
  KR_CUDA_CHECK(cudaEventRecord(compute_done_, compute_));
  KR_CUDA_CHECK(cudaStreamWaitEvent(stream_, compute_done_, 0));
  const int L = static_cast<int>(layers.size());
  const size_t slot_bytes = 2 * static_cast<size_t>(L) * block_bytes_;
  char* host_bytes = static_cast<char*>(host);
  for (size_t begin = 0; begin < copies.size(); begin += static_cast<size_t>(staging_slots_)) {
    const size_t end = std::min(copies.size(), begin + static_cast<size_t>(staging_slots_));
    KvCopyChunk chunk;
    chunk.n = static_cast<int32_t>(end - begin);
    for (size_t i = begin; i < end; ++i) chunk.blocks[i - begin] = copies[i].device_block;
    if (to_host) {
      launch_kv_block_gather(layer_ptrs_dev_, L, block_bytes_, chunk, staging_, /*to_staging=*/true, stream_);
      for (size_t i = begin; i < end; ++i)
        KR_CUDA_CHECK(cudaMemcpyAsync(host_bytes + static_cast<size_t>(copies[i].host_slot) * slot_bytes,
                                      staging_ + (i - begin) * slot_bytes, slot_bytes, cudaMemcpyDeviceToHost, stream_));
    } else {
      for (size_t i = begin; i < end; ++i)
        KR_CUDA_CHECK(cudaMemcpyAsync(staging_ + (i - begin) * slot_bytes,
                                      host_bytes + static_cast<size_t>(copies[i].host_slot) * slot_bytes, slot_bytes,
                                      cudaMemcpyHostToDevice, stream_));
      launch_kv_block_gather(layer_ptrs_dev_, L, block_bytes_, chunk, staging_, /*to_staging=*/false, stream_);
    }
  }
  cudaEvent_t e = nullptr;
  if (!spare_events_.empty()) {
    e = spare_events_.back();
    spare_events_.pop_back();
  } else {
    KR_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  }
  KR_CUDA_CHECK(cudaEventRecord(e, stream_));
  in_flight_.emplace_back(++last_ticket_, e);
  return last_ticket_;
}

void KvBlockCopier::retire() {
  while (!in_flight_.empty()) {
    const cudaError_t q = cudaEventQuery(in_flight_.front().second);
    if (q == cudaErrorNotReady) return;
    KR_CUDA_CHECK(q);
    done_ticket_ = in_flight_.front().first;
    spare_events_.push_back(in_flight_.front().second);
    in_flight_.pop_front();
  }
}

bool KvBlockCopier::done(uint64_t ticket) {
  if (ticket <= done_ticket_) return true;
  retire();
  return ticket <= done_ticket_;
}

void KvBlockCopier::order_after(cudaStream_t stream, uint64_t ticket) {
  if (done(ticket)) return;
  for (const auto& [t, e] : in_flight_) {
    if (t >= ticket) {  // copies finish in ticket order: this event covers `ticket`
      KR_CUDA_CHECK(cudaStreamWaitEvent(stream, e, 0));
      return;
    }
  }
}

void KvBlockCopier::synchronize() {
  KR_CUDA_CHECK(cudaStreamSynchronize(stream_));
  retire();
}

}  // namespace kr::cuda
