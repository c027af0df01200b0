// The CUDA backend: bf16 activations and weights on one NVIDIA GPU, cuBLAS for
// GEMMs with more than a few rows, own kernels for the rest (cuda_kernels.cu,
// cuda_gemv1.cu, cuda_attention.cu, cuda_sampling.cu). Step graphs via
// Backend::begin_graph/end_graph.
//
// Threading: like every Backend, owned and called by one thread.
#pragma once

#include <memory>

#include "backend/backend.h"

namespace kr {

// Settings of the CUDA backend, fixed when it is made. Programs read them from
// their flags or environment (e.g. kr-serve: KR_GPU_MEMORY_FRACTION, KR_PDL) and
// pass them down; nothing below reads the environment.
struct CudaOptions {
  int device = 0;
  // Share of the device's free memory (measured after the weights) that the KV
  // cache may use, less a reserve for workspace; in [0.05, 0.99].
  double memory_fraction = 0.9;
  // Programmatic dependent launch for the batch-1 GEMVs: each requests its first
  // weights while the kernel before it drains. Off serialises every kernel, for
  // profiling per kernel or to rule it out when a result looks wrong.
  bool pdl = true;
  // > 0: everything this backend allocates on the device (weights, workspace,
  // the KV cache and a reserve) stays within this many bytes; the KV cache gets
  // what the rest leaves (never more than is free). For several models on one
  // device, each with its share. 0: the KV cache takes memory_fraction of the
  // free memory, as above.
  size_t memory_budget_bytes = 0;
};

// True when the CUDA runtime finds at least one usable device.
bool cuda_device_available();
// Free and total bytes of `device` now; false without a usable device.
bool cuda_device_memory(int device, size_t* free_bytes, size_t* total_bytes);

// Creates the backend on options.device. Returns nullptr when no device is usable.
std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options);

}  // namespace kr
