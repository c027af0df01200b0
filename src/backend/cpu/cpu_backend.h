// CpuBackend: the float32 reference implementation of every Backend op.
// Activations are kF32; weights stay in their source dtype (BF16/F16/F32) and
// are converted on the fly inside matmul/embedding. Ops run on a ThreadPool.
//
// Threading: like every Backend, owned and called by one thread; the pool's
// workers only run inside an op.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "base/thread_pool.h"

namespace kr {

class CpuBackend final : public Backend {
 public:
  CpuBackend(int threads, size_t kv_cache_bytes);
  ~CpuBackend() override;

  std::string name() const override { return "cpu"; }
  DType activation_dtype() const override { return DType::kF32; }

  Tensor alloc(DType dtype, std::initializer_list<int64_t> dims) override;
  void free(Tensor& t) override;
  // Keeps a pointer to `host` (no copy): the mmap'd file or host buffer must outlive use.
  Tensor upload_weight(const Tensor& host) override;
  bool upload_keeps_host_pointer() const override { return true; }
  void copy_from_host(Tensor& dst, const void* src, size_t bytes) override;
  void copy_to_host(void* dst, const Tensor& src, size_t bytes) override;
  void fill_zero(Tensor& t) override;
  void synchronize() override {}
  size_t kv_cache_budget_bytes() const override { return kv_cache_bytes_; }

  void set_step_metadata(const StepMetadata& meta) override;

  void embedding(const Tensor& table, const Tensor& ids, float scale, Tensor& out) override;
  void rms_norm(const Tensor& x, const RmsNorm& norm, Tensor& out) override;
  void add_rms_norm(Tensor& residual, const Tensor& x, const RmsNorm& norm, Tensor& out) override;
  void matmul(const Tensor& x, const Tensor& w, Tensor& out) override;
  void rope(Tensor& qkv, const QkvParams& p) override;
  void store_kv(const Tensor& qkv, int q_heads, int kv_heads, int head_dim, KvLayer& kv) override;
  void attention(const Tensor& qkv, const KvLayer& kv, const AttentionParams& p, Tensor& out) override;
  void silu_mul(const Tensor& gate_up, Activation f, Tensor& out) override;
  void gather_rows(const Tensor& x, const Tensor& idx, Tensor& out) override;
  void softcap(Tensor& x, float cap) override;
  bool argmax_logprob(const Tensor& logits, int32_t* ids, float* logprobs) override;

  ThreadPool& pool() { return pool_; }

 private:
  ThreadPool pool_;
  size_t kv_cache_bytes_;
  StepMetadata meta_;
  std::vector<int32_t> token_seq_;  // [T] sequence index of each token, from meta_
  std::vector<void*> allocations_;
};

// Reads element i of a weight/activation row of any float dtype as float32.
float cpu_load_as_f32(const void* data, DType dtype, int64_t i);
// Converts n elements starting at element `offset` of `src` (dtype) to float32.
void cpu_convert_to_f32(const void* src, DType dtype, int64_t offset, int64_t n, float* dst);
// out[0, n) = the RMS norm of the row x[0, n) with `norm`'s weight [n] and form;
// sum of squares in double. out may be x.
void cpu_rms_norm_row(const float* x, const RmsNorm& norm, int64_t n, float* out);

}  // namespace kr
