// The CUDA backend: bf16 activations and weights on one NVIDIA GPU, cuBLAS for
// GEMMs with more than a few rows, own kernels for the rest (cuda_kernels.cu,
// cuda_attention.cu). Step graphs via Backend::begin_graph/end_graph.
//
// Threading: like every Backend, owned and called by one thread.
#pragma once

#include <memory>

#include "backend/backend.h"

namespace kr {

// True when the CUDA runtime finds at least one usable device.
bool cuda_device_available();

// Creates the backend on `device`. The KV-cache budget is the device's free memory
// (measured when kv_cache_budget_bytes() is called, i.e. after the weights) times
// KR_GPU_MEMORY_FRACTION (default 0.9), less a reserve for workspace.
// Returns nullptr when no device is usable.
std::unique_ptr<Backend> make_cuda_backend(int device = 0);

}  // namespace kr
