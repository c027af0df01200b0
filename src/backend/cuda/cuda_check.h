// KR_CUDA_CHECK(expr): the one error check of the CUDA backend, for CUDA runtime
// calls (cudaError_t) and cuBLAS calls (cublasStatus_t). A failure is a broken
// invariant or a lost device: it aborts with file:line, the call and the error
// text (base/check.h). Kernel launches go through cuda_launch.cuh, which checks
// each one with this macro.
//
// Threading: any thread.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "base/check.h"

namespace kr::cuda {

inline void check_status(cudaError_t e, const char* file, int line, const char* expr) {
  if (e != cudaSuccess) ::kr::detail::check_failed(file, line, expr, cudaGetErrorString(e));
}
inline void check_status(cublasStatus_t s, const char* file, int line, const char* expr) {
  if (s != CUBLAS_STATUS_SUCCESS) ::kr::detail::check_failed(file, line, expr, cublasGetStatusString(s));
}

}  // namespace kr::cuda

#define KR_CUDA_CHECK(expr) ::kr::cuda::check_status((expr), __FILE__, __LINE__, #expr)
