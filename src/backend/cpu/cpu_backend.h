// CpuBackend: the float32 reference implementation of every Backend op.
// Activations are kF32; weights stay in their source dtype (BF16/F16/F32) and
// are converted on the fly inside matmul/embedding; quantized weights are
// dequantized to float32 once at upload (dequantize(), bit-exact to the NumPy
// reference) and activations are never quantized, unless CpuOptions asks for the
// CUDA backend's FP8 W8A8 activation quantization. Ops run on a ThreadPool.
//
// Threading: like every Backend, owned and called by one thread; the pool's
// workers only run inside an op.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "base/thread_pool.h"

namespace kr {

struct CpuOptions {
  // Emulate the CUDA backend's FP8 W8A8 path (CudaOptions::fp8_w8a8_min_tokens):
  // for weights that run W8A8 there (fp8_runs_w8a8()), a matmul of at least
  // fp8_w8a8_min_tokens rows first replaces each row of x by its FP8 image,
  // cpu_fp8_quantize_row(), then multiplies by the float32 weights as usual.
  // Off: the W8A16 reference (activations never quantized). For kr-backend-ops,
  // which compares the CUDA W8A8 path with it. Unlike CUDA, which keeps f32
  // outputs (logits) W8A16, every row count >= the threshold is emulated: the CPU
  // cannot tell its (always f32) outputs apart; no fixture quantizes lm_head.
  bool emulate_fp8_w8a8 = false;
  int fp8_w8a8_min_tokens = 9;
  // fuses_decode_stack() says true at steps of one token, so that a model runs its
  // layers through Backend::decode_stack (here its default, the same ops), as on a
  // backend that fuses it: for tests of the model's side of that op.
  bool report_decode_stack_fused = false;
};

// How one Linear's activations are quantized on the W8A8 path.
struct Fp8ActQuant {
  bool static_input = false;  // scale = input_scale; else dynamic per row
  float input_scale = 0.0f;
  float ub = 0.0f;            // cap on a row's max |x| (fbgemm's activation_scale_ub); 0: none
};

// The scale of one row x[0, K) as the CUDA W8A8 path computes it: input_scale,
// or max(min(max|x|, ub) / 448, 1 / (448 * 512)).
float cpu_fp8_act_scale(const float* x, int64_t K, const Fp8ActQuant& q);
// out[k] = e4m3(x[k] / s) * s with s = cpu_fp8_act_scale(): x / s rounded once to
// float32, then to e4m3 by round-to-nearest-even saturated to ±448 (as
// __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3)); NaN stays NaN. out may be x.
void cpu_fp8_quantize_row(const float* x, int64_t K, const Fp8ActQuant& q, float* out);

class CpuBackend final : public Backend {
 public:
  CpuBackend(int threads, size_t kv_cache_bytes, const CpuOptions& options = {});
  ~CpuBackend() override;

  std::string name() const override { return "cpu"; }
  DType activation_dtype() const override { return DType::kF32; }

  Tensor alloc(DType dtype, std::initializer_list<int64_t> dims) override;
  void free(Tensor& t) override;
  // Keeps a pointer to `host` (no copy): the mmap'd file or host buffer must outlive use.
  Tensor upload_weight(const Tensor& host) override;
  bool upload_keeps_host_pointer() const override { return true; }
  // A dense kF32 [N, K] weight owned by the backend: dequantize(m). With
  // emulate_fp8_w8a8 and fp8_runs_w8a8(m), matmul quantizes its activations.
  StatusOr<LinearWeight> upload_quantized(const QuantizedMatrix& m) override;
  void copy_from_host(Tensor& dst, const void* src, size_t bytes) override;
  void copy_to_host(void* dst, const Tensor& src, size_t bytes) override;
  void fill_zero(Tensor& t) override;
  void synchronize() override {}
  size_t kv_cache_budget_bytes() const override { return kv_cache_bytes_; }
  // Leads for the engine's step-time estimate: a few GFLOP/s per thread of the
  // scalar float32 loops, tens of GB/s of memory.
  BackendRates rates() const override {
    BackendRates r;
    r.matmul_flop_s = 4e9 * pool_.num_threads();
    r.attention_flop_s = 2e9 * pool_.num_threads();
    r.memory_byte_s = 20e9;
    r.step_overhead_s = 1e-4;
    return r;
  }

  void set_step_metadata(const StepMetadata& meta) override;

  void embedding(const LinearWeight& table, const Tensor& ids, float scale, Tensor& out) override;
  void rms_norm(const Tensor& x, const RmsNorm& norm, Tensor& out) override;
  void add_rms_norm(Tensor& residual, const Tensor& x, const RmsNorm& norm, Tensor& out) override;
  void matmul(const Tensor& x, const LinearWeight& w, Tensor& out) override;
  void rope(Tensor& qkv, const QkvParams& p) override;
  void store_kv(const Tensor& qkv, int q_heads, int kv_heads, int head_dim, KvLayer& kv) override;
  // Writes no FP8 rows (clears out_fp8's record): its matmul never quantizes activations.
  void attention(const Tensor& qkv, const KvLayer& kv, const AttentionParams& p, Tensor& out,
                 Fp8Out out_fp8 = {}) override;
  void silu_mul(const Tensor& gate_up, Activation f, Tensor& out) override;
  void gather_rows(const Tensor& x, const Tensor& idx, Tensor& out) override;
  void softcap(Tensor& x, float cap) override;
  bool argmax_logprob(const Tensor& logits, int32_t* ids, float* logprobs) override;
  // Synchronous here: the argmax runs in launch_argmax, read_argmax copies its results.
  bool implements_launch_argmax() const override { return true; }
  int64_t launch_argmax(const Tensor& logits) override;
  void read_argmax(int64_t ticket, int32_t* ids, float* logprobs) override;
  void feed_sampled_ids(Tensor& ids) override;

  ThreadPool& pool() { return pool_; }
  const CpuOptions& options() const { return options_; }
  // CpuOptions::report_decode_stack_fused; decode_stack counts its calls.
  bool fuses_decode_stack(const DecodeStack& s) const override {
    return options_.report_decode_stack_fused && s.residual != nullptr && s.residual->dim(0) == 1;
  }
  void decode_stack(const DecodeStack& s) override {
    ++decode_stack_calls_;
    Backend::decode_stack(s);
  }
  int64_t decode_stack_calls() const { return decode_stack_calls_; }
  // Live weights whose matmuls quantize activations (emulate_fp8_w8a8 only).
  size_t w8a8_weights() const { return w8a8_.size(); }

 private:
  ThreadPool pool_;
  size_t kv_cache_bytes_;
  CpuOptions options_;
  int64_t decode_stack_calls_ = 0;
  // The dense f32 copies (by data pointer) of the weights that run W8A8.
  std::unordered_map<const void*, Fp8ActQuant> w8a8_;
  StepMetadata meta_;
  std::vector<int32_t> token_seq_;  // [T] sequence index of each token, from meta_
  std::vector<void*> allocations_;
  // launch_argmax's results, slot ticket % kArgmaxSlots: [R] ids and logprobs.
  struct ArgmaxSlot {
    int64_t ticket = 0;
    std::vector<int32_t> ids;
    std::vector<float> logprobs;
  };
  ArgmaxSlot argmax_slots_[kArgmaxSlots];
  int64_t argmax_tickets_ = 0;  // the latest launch's ticket
};

// Reads element i of a weight/activation row of any float dtype as float32.
float cpu_load_as_f32(const void* data, DType dtype, int64_t i);
// Converts n elements starting at element `offset` of `src` (dtype) to float32.
void cpu_convert_to_f32(const void* src, DType dtype, int64_t offset, int64_t n, float* dst);
// out[0, n) = the RMS norm of the row x[0, n) with `norm`'s weight [n] and form;
// sum of squares in double. out may be x.
void cpu_rms_norm_row(const float* x, const RmsNorm& norm, int64_t n, float* out);

}  // namespace kr
