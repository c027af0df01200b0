#include "backend/cuda/cuda_fp8_gemm.h"

#include "backend/cuda/cuda_check.h"

namespace kr::cuda {
namespace {

// The descriptors of one call. Column-major view: D [N, T] = op(A) [N, K] · B [K, T]
// with A = the weight (row-major [N, ld_w] is column-major [K, N]: transposed)
// and B = the activations (row-major [T, K] is column-major [K, T]); D row-major
// is out [T, N]. cuBLASLt's FP8 kernels want exactly this "TN" form.
struct Descs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  Descs(int N, int K, int ld_w, int T, const float* sw, const float* sx) {
    KR_CUDA_CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    KR_CUDA_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    KR_CUDA_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    KR_CUDA_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof mode));
    KR_CUDA_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof mode));
    KR_CUDA_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sw, sizeof sw));
    KR_CUDA_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sx, sizeof sx));
    KR_CUDA_CHECK(cublasLtMatrixLayoutCreate(&a, CUDA_R_8F_E4M3, K, N, ld_w));
    KR_CUDA_CHECK(cublasLtMatrixLayoutCreate(&b, CUDA_R_8F_E4M3, K, T, K));
    KR_CUDA_CHECK(cublasLtMatrixLayoutCreate(&d, CUDA_R_16BF, N, T, N));
  }
  ~Descs() {
    cublasLtMatrixLayoutDestroy(d);
    cublasLtMatrixLayoutDestroy(b);
    cublasLtMatrixLayoutDestroy(a);
    cublasLtMatmulDescDestroy(op);
  }
};

}  // namespace

Fp8Gemm::Fp8Gemm(void* workspace, size_t bytes) : workspace_(workspace), workspace_bytes_(bytes) {
  KR_CUDA_CHECK(cublasLtCreate(&lt_));
}

Fp8Gemm::~Fp8Gemm() { cublasLtDestroy(lt_); }

bool Fp8Gemm::run(const void* wq, int N, int K, int ld_w, const float* sw, const void* xq, const float* sx, int T,
                  void* out, cudaStream_t stream) {
  // FP8 operands need 16-byte leading dimensions; the bf16 output too.
  if (T <= 0 || K % 16 != 0 || ld_w % 16 != 0 || N % 8 != 0) return false;
  const Descs ds(N, K, ld_w, T, sw, sx);
  Plan& plan = plans_[{N, K, ld_w, T}];
  if (!plan.tried) {
    plan.tried = true;
    cublasLtMatmulPreference_t pref = nullptr;
    KR_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    KR_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                       &workspace_bytes_, sizeof workspace_bytes_));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(lt_, ds.op, ds.a, ds.b, ds.d, ds.d, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    plan.ok = st == CUBLAS_STATUS_SUCCESS && found > 0;
    if (plan.ok) plan.algo = result.algo;
  }
  if (!plan.ok) return false;
  const float alpha = 1.0f, beta = 0.0f;
  const cublasStatus_t st = cublasLtMatmul(lt_, ds.op, &alpha, wq, ds.a, xq, ds.b, &beta, out, ds.d, out, ds.d,
                                           &plan.algo, workspace_, workspace_bytes_, stream);
  if (st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_INVALID_VALUE) {  // refused before any work
    plan.ok = false;
    return false;
  }
  KR_CUDA_CHECK(st);
  return true;
}

}  // namespace kr::cuda
