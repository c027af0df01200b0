// CudaSampler: Backend::sample on the GPU (see backend/device_sampling.h for
// the semantics). One thread block per logits row; only ids and logprobs come
// back to the host.
//
// Method per row (cuda_sampling.cu): one block per row at large batches; with
// few rows a thread block cluster of up to 8 blocks splits the row, merging
// partial results through distributed shared memory. A bitmap in shared memory marks the few
// ids whose logit a penalty or EOS suppression changes, so the processed logit
// of every id is computed on the fly from the raw row (no copy of the row).
// Pass 1 checks finiteness and finds the raw max/argmax, the raw log-sum-exp
// (online) and the processed max/argmax (greedy). Top logprobs: radix select of
// the N-th largest raw logit (3 histogram passes over the float bits) and a
// collecting pass. Sampling: weights w = exp((l - max) / T) are recomputed per
// pass; min-p is a comparison; top-k is a radix select of the k-th largest w
// (count histograms), top-p a radix select of the threshold below which the
// ascending cumulative mass stays <= (1 - top_p) * total (mass histograms);
// the draw is Gumbel-max over the kept ids, argmax of (l - max) / T - log(E),
// E = Exp(1) from a splitmix64 hash of (random_bits, id), lowest id on ties.
//
// Threading: owned by the backend's thread; every call is synchronous on `stream`.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "backend/device_sampling.h"

namespace kr::cuda {

class CudaSampler {
 public:
  CudaSampler();  // allocates the initial device and pinned buffers
  ~CudaSampler();
  CudaSampler(const CudaSampler&) = delete;
  CudaSampler& operator=(const CudaSampler&) = delete;

  // logits [R, V] f32 on the device. rows [R]; penalty_ids / penalty_counts
  // [num_penalty] (ranges per row, see DeviceSamplingRow); eos_ids [num_eos].
  // out [R] host. Returns false (nothing run) for unsupported input: a row
  // asking for more than kDeviceSamplingMaxTop logprobs, more than 64 EOS ids or
  // a vocabulary too large for the shared-memory bitmap. Synchronous; not
  // allowed while `stream` is capturing.
  bool sample(const float* logits, int R, int V, const DeviceSamplingRow* rows, const int32_t* penalty_ids,
              const int32_t* penalty_counts, int num_penalty, const int32_t* eos_ids, int num_eos,
              DeviceSampleResult* out, cudaStream_t stream);

 private:
  void reserve(size_t in_bytes, size_t out_bytes, cudaStream_t stream);

  char* in_host_ = nullptr;  // pinned: rows, penalty ids, counts, eos ids
  char* in_dev_ = nullptr;
  size_t in_capacity_ = 0;
  DeviceSampleResult* out_dev_ = nullptr;
  DeviceSampleResult* out_host_ = nullptr;  // pinned
  size_t out_capacity_ = 0;  // bytes
  int num_sms_ = 0;          // rows per call below this get several blocks each
};

}  // namespace kr::cuda
