// FP8 W8A8 GEMM on Hopper's FP8 tensor cores through cuBLASLt:
// out[T, N] (bf16) = Σ_k xq[t, k] wq[n, k] · sx[t] · sw[n], with e4m3 operands,
// f32 accumulation and "outer vector" scales (CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F:
// one f32 per row of each operand), i.e. per-channel (or expanded per-tensor)
// weight scales and per-token (or static) activation scales, as vLLM's
// cutlass_scaled_mm computes. The activations come from the op that produced
// them (the RMS norm or the GLU with their FP8 rows: Fp8Rows in backend/backend.h)
// or from launch_quantize_fp8_rows (cuda_qgemm.h), bit for bit the same.
//
// Threading: called only from the thread that owns the CudaBackend.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <tuple>

#include <cublasLt.h>
#include <cuda_runtime_api.h>

namespace kr::cuda {

class Fp8Gemm {
 public:
  // `workspace` (device, `bytes`) is shared with the caller's cuBLAS handle: both
  // run on one stream.
  Fp8Gemm(void* workspace, size_t bytes);
  ~Fp8Gemm();
  Fp8Gemm(const Fp8Gemm&) = delete;
  Fp8Gemm& operator=(const Fp8Gemm&) = delete;

  // wq [N, ld_w] e4m3 row-major (K columns used); xq [T, K] e4m3; sw [N], sx [T]
  // f32 (device); out [T, N] bf16. False (nothing enqueued) when cuBLASLt offers no
  // algorithm for this shape or scale mode (the caller then runs its own kernel);
  // the answer is cached per shape.
  bool run(const void* wq, int N, int K, int ld_w, const float* sw, const void* xq, const float* sx, int T, void* out,
           cudaStream_t stream);

 private:
  struct Plan {
    bool tried = false;
    bool ok = false;
    cublasLtMatmulAlgo_t algo{};
  };
  cublasLtHandle_t lt_ = nullptr;
  void* workspace_;
  size_t workspace_bytes_;
  std::map<std::tuple<int, int, int, int>, Plan> plans_;  // (N, K, ld_w, T)
};

}  // namespace kr::cuda
