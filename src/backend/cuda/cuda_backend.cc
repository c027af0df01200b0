// CudaBackend: the Backend ops on one GPU. Everything is enqueued on one stream;
// host<->device copies are the only synchronisation points. Each op launches its
// kernels when it is called. At batch 1 the fused ops (qkv_rope_store,
// matmul_silu_mul) run as one split-K GEMV with the small op in its prologue or
// epilogue (cuda_gemv1.h: q/k/v bias, q/k norms, GELU included); at other batch
// sizes they run the matmul and one kernel for the rest. matmul_add_rms_norm is
// the matmul and one norm kernel (with Gemma's norm of the matmul's output).
// FP8 W8A8 weights (T >= fp8_w8a8_min_tokens) take e4m3 activations: the norm
// kernels (matmul_add_rms_norm's, a norm prologue's) and the GLU kernel write them
// next to their bf16 output for the W8A8 matmul that reads it (Fp8Rows), and so
// does attention for o_proj (CudaOptions::fp8_attention_out: the flash decode
// kernel's last-arriver tail, else a quantize kernel right after attention).
#include "backend/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_decode_attention.h"
#include "backend/cuda/cuda_flash_attention.h"
#include "backend/cuda/cuda_fp8_gemm.h"
#include "backend/cuda/cuda_fp8_gemm_small.h"
#include "backend/cuda/cuda_fp8_gemm_wgmma.h"
#include "backend/cuda/cuda_gemv1.h"
#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/cuda_kv_copier.h"
#include "backend/cuda/cuda_decode_stack.h"
#include "backend/cuda/cuda_qgemm.h"
#include "backend/cuda/cuda_quant_repack.h"
#include "backend/cuda/cuda_sampling.h"
#include "base/check.h"
#include "base/log.h"

namespace kr {
namespace {

constexpr size_t kStagingBytes = size_t{32} << 20;         // pinned host bytes a graph step may copy in
constexpr size_t kMetaInts = size_t{8} << 20;              // device int32 slots for step metadata
constexpr size_t kAttnScratchBytes = size_t{256} << 20;    // split-K partials (flash: half per kernel)
constexpr size_t kCublasWorkspaceBytes = size_t{64} << 20;
constexpr size_t kReserveBytes = size_t{1} << 30;          // left free after the KV cache: workspace, cuBLAS
constexpr int kTargetBlocks = 528;                         // 4 blocks per SM (132 SMs) for split decode
constexpr int kMaxSampleRows = 4096;                       // rows of one argmax_logprob call
constexpr size_t kQPartialFloats = size_t{4} << 20;        // split-K partial sums of the quantized kernels
constexpr int kQCounters = 1 << 16;                        // their arrival counters
constexpr int kActRows = 2048;                             // rows per chunk of gathered / FP8 activations
// What the constructor allocates on the device.
constexpr size_t kFixedDeviceBytes = kCublasWorkspaceBytes + kMetaInts * sizeof(int32_t) + kAttnScratchBytes +
                                     kQPartialFloats * sizeof(float) + kQCounters * sizeof(int);

size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

// The decode stack's streaming warps a CTA for these options and Linears of `group`-column
// groups (the images' read order and the rings' shared memory both follow it).
int stack_stream_warps(const CudaOptions& o, int group) {
  return cuda::stack_stream_warps(group, o.decode_stack_row_ring, o.decode_stack_warp0_streams);
}

// The decode stack's ring depth for CudaOptions::decode_stack_ring_depth and Linears of
// `group`-column groups, for a model of these sizes: 0 takes cuda::stack_auto_ring_depth, or
// with the row ring (decode_stack_row_ring) the most rows shared memory holds (at most
// cuda::kStackMaxRingRows); any other value is itself (the refusal checks its range, so a
// negative one is refused, not taken as the default).
int stack_ring_depth(const CudaOptions& o, int group, int H, int I, int q_heads, int kv_heads) {
  if (o.decode_stack_ring_depth != 0) return o.decode_stack_ring_depth;
  if (!o.decode_stack_row_ring)
    return cuda::stack_auto_ring_depth(H, I, q_heads, kv_heads, group, stack_stream_warps(o, group));
  int rows = cuda::kStackMinRingDepth;
  while (rows < cuda::kStackMaxRingRows &&
         cuda::stack_smem_bytes(H, I, q_heads, kv_heads, group, rows + 1, stack_stream_warps(o, group), false, 0) <=
             cuda::kStackSmemLimit)
    ++rows;
  return rows;
}

// A quantized weight on this GPU: the device image of cuda_quant_repack.h.
struct CudaQuantWeight final : QuantizedWeight {
  cuda::QWeight w;
  cuda::StackMatrix stack;  // its image for the decode stack kernel (prepare_decode_stack), or none
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaOptions& options) : options_(options) {
    KR_CHECK_MSG(options_.memory_fraction >= 0.05 && options_.memory_fraction <= 0.99,
                 "CudaOptions::memory_fraction must be in [0.05, 0.99]");
    KR_CHECK_MSG(options_.flash_prefill_variant >= 0 && options_.flash_prefill_variant < cuda::kFlashPrefillVariants,
                 "CudaOptions::flash_prefill_variant out of range");
    KR_CHECK_MSG(options_.flash_prefill_short_variant >= 0 &&
                     options_.flash_prefill_short_variant < cuda::kFlashPrefillVariants,
                 "CudaOptions::flash_prefill_short_variant out of range");
    KR_CHECK_MSG(options_.flash_prefill_short_max_keys >= 0, "CudaOptions::flash_prefill_short_max_keys must be >= 0");
    KR_CHECK_MSG(options_.flash_decode_warps == 0 || options_.flash_decode_warps == 2 ||
                     options_.flash_decode_warps == 4,
                 "CudaOptions::flash_decode_warps must be 0 (the policy's), 2 or 4");
    KR_CUDA_CHECK(cudaSetDevice(options_.device));
    KR_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    KR_CUDA_CHECK(cublasCreate(&cublas_));
    KR_CUDA_CHECK(cublasSetStream(cublas_, stream_));
    KR_CUDA_CHECK(cudaMalloc(&cublas_ws_, kCublasWorkspaceBytes));
    // An explicit workspace keeps cuBLAS from allocating inside a graph capture.
    KR_CUDA_CHECK(cublasSetWorkspace(cublas_, cublas_ws_, kCublasWorkspaceBytes));
    KR_CUDA_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
    KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&meta_dev_), kMetaInts * sizeof(int32_t)));
    KR_CUDA_CHECK(cudaMalloc(&attn_scratch_, kAttnScratchBytes));
    // argmax_logprob's results: pinned host memory the kernel writes through its mapping, so
    // that no copy follows the kernel (there were two, into the caller's pageable arrays:
    // docs/performance.md, session 34).
    // One slot per unread launch_argmax (Backend::kArgmaxSlots), each ids [R] then logprobs [R].
    KR_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&sample_out_host_),
                                kArgmaxSlots * kSampleSlotInts * sizeof(int32_t), cudaHostAllocMapped));
    KR_CUDA_CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&sample_out_dev_), sample_out_host_, 0));
    KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&fed_ids_dev_), kMaxSampleRows * sizeof(int32_t)));
    KR_CUDA_CHECK(cudaMalloc(&argmax_scratch_.partials, cuda::argmax_scratch_bytes()));
    KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&argmax_scratch_.tickets), cuda::kArgmaxSplitRows * sizeof(unsigned)));
    KR_CUDA_CHECK(cudaMemset(argmax_scratch_.tickets, 0, cuda::kArgmaxSplitRows * sizeof(unsigned)));
    for (cudaEvent_t& e : argmax_done_) KR_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    sampler_ = std::make_unique<cuda::CudaSampler>();  // its device and pinned buffers (grown on demand)
    for (int h = 0; h < 2; ++h) {
      KR_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&staging_[h]), kStagingBytes, cudaHostAllocDefault));
      KR_CUDA_CHECK(cudaEventCreateWithFlags(&graph_done_[h], cudaEventDisableTiming));
    }
    cuda::configure_attention_kernels();
    cuda::configure_flash_attention(options_.flash_prefill_variant);
    cuda::configure_flash_attention(options_.flash_prefill_short_variant);  // before any step-graph capture
    cuda::configure_decode_attention();
    cuda::configure_decode_stack();
    KR_CUDA_CHECK(cudaDeviceGetAttribute(&num_sms_, cudaDevAttrMultiProcessorCount, options_.device));
    KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&q_partials_), kQPartialFloats * sizeof(float)));
    KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&q_counters_), kQCounters * sizeof(int)));
    KR_CUDA_CHECK(cudaMemset(q_counters_, 0, kQCounters * sizeof(int)));
    fp8_gemm_ = std::make_unique<cuda::Fp8Gemm>(cublas_ws_, kCublasWorkspaceBytes);
    cuda::prepare_fp8_small_gemm();
    cuda::prepare_fp8_wgmma_gemm();
  }

  // Teardown ignores errors: a lost device must not turn exit into an abort.
  ~CudaBackend() override {
    cudaStreamSynchronize(stream_);
    kv_copier_.reset();
    for (auto& [key, g] : graphs_)
      for (cudaGraphExec_t e : g.exec)
        if (e != nullptr) cudaGraphExecDestroy(e);
    for (const auto& [p, bytes] : allocations_) cudaFree(p);
    fp8_gemm_.reset();
    cudaFree(q_partials_);
    cudaFree(q_counters_);
    cudaFree(cublas_ws_);
    cudaFree(meta_dev_);
    cudaFree(attn_scratch_);
    cudaFreeHost(sample_out_host_);
    cudaFree(fed_ids_dev_);
    cudaFree(argmax_scratch_.partials);
    cudaFree(argmax_scratch_.tickets);
    for (cudaEvent_t e : argmax_done_) cudaEventDestroy(e);
    cudaFreeHost(mask_host_);
    cudaFree(mask_dev_);
    cudaFreeHost(mask_rows_host_);
    cudaFree(mask_rows_dev_);
    sampler_.reset();
    for (int h = 0; h < 2; ++h) {
      cudaFreeHost(staging_[h]);
      cudaEventDestroy(graph_done_[h]);
    }
    cublasDestroy(cublas_);
    cudaStreamDestroy(stream_);
  }

  std::string name() const override { return "cuda"; }
  DType activation_dtype() const override { return DType::kBF16; }

  Tensor alloc(DType dtype, std::initializer_list<int64_t> dims) override {
    KR_CHECK_MSG(mode_ == Mode::kEager, "alloc inside a step graph");
    Tensor t(nullptr, dtype, dims);
    void* p = nullptr;
    KR_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(t.bytes(), 16)));
    allocations_.emplace(p, std::max<size_t>(t.bytes(), 16));
    allocated_bytes_ += std::max<size_t>(t.bytes(), 16);
    t.data = p;
    return t;
  }

  void free(Tensor& t) override {
    if (t.data == nullptr) return;
    KR_CHECK_MSG(mode_ == Mode::kEager, "free inside a step graph");
    if (auto it = allocations_.find(t.data); it != allocations_.end()) {
      allocated_bytes_ -= it->second;
      allocations_.erase(it);
      KR_CUDA_CHECK(cudaStreamSynchronize(stream_));
      KR_CUDA_CHECK(cudaFree(t.data));
      // A recorded step graph may read or write the freed memory (a model's
      // workspace, its KV cache): replaying it would touch memory that is gone or
      // handed out again, so every recording is dropped (Backend::begin_graph).
      drop_graphs();
    }
    t.data = nullptr;
  }

  Tensor upload_weight(const Tensor& host) override {
    // Weights become bf16 whatever their source float type; i32 stays i32.
    const DType dst_type = host.dtype == DType::kI32 ? DType::kI32 : DType::kBF16;
    Tensor t(nullptr, dst_type, {});
    t.ndim = host.ndim;
    for (int i = 0; i < host.ndim; ++i) t.shape[i] = host.shape[i];
    void* p = nullptr;
    KR_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(t.bytes(), 16)));
    allocations_.emplace(p, std::max<size_t>(t.bytes(), 16));
    allocated_bytes_ += std::max<size_t>(t.bytes(), 16);
    t.data = p;
    // On stream_, not with cudaMemcpy: stream_ is non-blocking, so it does not wait for
    // the legacy stream, and a pageable cudaMemcpy may return before its DMA lands; the
    // first kernels to read these weights could then see part of them (a model loaded
    // while another process kept the GPU's copy engines busy did).
    if (host.dtype == dst_type) {
      KR_CUDA_CHECK(cudaMemcpyAsync(p, host.data, host.bytes(), cudaMemcpyHostToDevice, stream_));
    } else {
      void* tmp = nullptr;
      KR_CUDA_CHECK(cudaMalloc(&tmp, host.bytes()));
      KR_CUDA_CHECK(cudaMemcpyAsync(tmp, host.data, host.bytes(), cudaMemcpyHostToDevice, stream_));
      cuda::launch_to_bf16(tmp, host.dtype == DType::kF16, host.dtype == DType::kF32, p, host.numel(), stream_);
      KR_CUDA_CHECK(cudaStreamSynchronize(stream_));
      KR_CUDA_CHECK(cudaFree(tmp));
    }
    return t;
  }

  StatusOr<LinearWeight> upload_quantized(const QuantizedMatrix& m) override;

  void copy_from_host(Tensor& dst, const void* src, size_t bytes) override {
    KR_CHECK(bytes <= dst.bytes());
    if (bytes == 0) return;
    if (mode_ == Mode::kEager) {
      KR_CUDA_CHECK(cudaMemcpyAsync(dst.data, src, bytes, cudaMemcpyHostToDevice, stream_));
      return;
    }
    staged_copy(dst.data, src, bytes);
  }

  void copy_to_host(void* dst, const Tensor& src, size_t bytes) override {
    KR_CHECK_MSG(mode_ == Mode::kEager, "copy_to_host inside a step graph");
    KR_CHECK(bytes <= src.bytes());
    KR_CUDA_CHECK(cudaMemcpyAsync(dst, src.data, bytes, cudaMemcpyDeviceToHost, stream_));
    KR_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void fill_zero(Tensor& t) override { KR_CUDA_CHECK(cudaMemsetAsync(t.data, 0, t.bytes(), op_stream())); }

  void synchronize() override { KR_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

  size_t kv_cache_budget_bytes() const override {
    size_t free_bytes = 0, total_bytes = 0;
    KR_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    if (options_.memory_budget_bytes > 0) {
      // This backend's share: what its weights, fixed buffers and reserve leave, within what is free.
      const size_t used = kFixedDeviceBytes + allocated_bytes_ + kReserveBytes;
      const size_t left = options_.memory_budget_bytes > used ? options_.memory_budget_bytes - used : 0;
      return std::min(left, free_bytes > kReserveBytes ? free_bytes - kReserveBytes : size_t{0});
    }
    const size_t budget = static_cast<size_t>(static_cast<double>(free_bytes) * options_.memory_fraction);
    return budget > kReserveBytes ? budget - kReserveBytes : 0;
  }

  void set_step_metadata(const StepMetadata& m) override;

  void embedding(const LinearWeight& weight, const Tensor& ids, float scale, Tensor& out) override {
    const cudaStream_t s = op_stream();
    KR_CHECK(out.dtype == DType::kBF16 && ids.dim(0) == out.dim(0) && weight.cols() == out.dim(1));
    if (weight.quantized()) {
      cuda::launch_qembedding(qweight(weight).w, ids.as<int32_t>(), scale, out.data, static_cast<int>(out.dim(0)), s);
      return;
    }
    const Tensor& table = weight.dense;
    KR_CHECK(table.dtype == DType::kBF16 && out.dim(1) % 8 == 0);
    cuda::launch_embedding(table.data, ids.as<int32_t>(), scale, out.data, static_cast<int>(out.dim(0)),
                           static_cast<int>(out.dim(1)), s);
  }

  void rms_norm(const Tensor& x, const RmsNorm& norm, Tensor& out) override {
    const cudaStream_t s = op_stream();
    check_norm(x, norm, out);
    cuda::launch_rms_norm(norm_args(nullptr, x, norm, out), pdl_norm(x, norm), s);
  }

  void add_rms_norm(Tensor& residual, const Tensor& x, const RmsNorm& norm, Tensor& out) override {
    const cudaStream_t s = op_stream();
    check_norm(x, norm, out);
    KR_CHECK(residual.numel() == x.numel() && residual.dtype == DType::kBF16);
    cuda::launch_rms_norm(norm_args(residual.data, x, norm, out), pdl_norm(x, norm), s);
  }

  void matmul(const Tensor& x, const LinearWeight& w, Tensor& out) override;

  void rope(Tensor& qkv, const QkvParams& p) override {
    const cudaStream_t s = op_stream();
    check_qkv(qkv, p);
    cuda::launch_rope(rope_args(qkv, p, nullptr), s);
  }

  void store_kv(const Tensor& qkv, int q_heads, int kv_heads, int head_dim, KvLayer& kv) override {
    const cudaStream_t s = op_stream();
    KR_CHECK(qkv.dim(0) == meta_.num_tokens && head_dim % 8 == 0);
    check_kv(kv, kv_heads, head_dim);
    cuda::launch_store_kv(qkv.data, slots_dev(), kv.k.data, kv.v.data, static_cast<int>(qkv.dim(0)), q_heads,
                          kv_heads, head_dim, s, kv.fp8(), kv.k_scale, kv.v_scale);
  }

  void attention(const Tensor& qkv, const KvLayer& kv, const AttentionParams& p, Tensor& out,
                 Fp8Out out_fp8 = {}) override;

  void silu_mul(const Tensor& gate_up, Activation f, Tensor& out) override {
    const cudaStream_t s = op_stream();
    const int64_t I = out.dim(1);
    KR_CHECK(gate_up.dim(0) == out.dim(0) && gate_up.dim(1) == 2 * I && I % 8 == 0);
    cuda::launch_silu_mul(gate_up.data, activation_code(f), out.data, static_cast<int>(out.dim(0)),
                          static_cast<int>(I), s);
  }

  void softcap(Tensor& x, float cap) override {
    const cudaStream_t s = op_stream();
    KR_CHECK((x.dtype == DType::kF32 || x.dtype == DType::kBF16) && cap > 0.0f);
    cuda::launch_softcap(x.data, x.dtype == DType::kF32, x.numel(), cap, s);
  }

  void gather_rows(const Tensor& x, const Tensor& idx, Tensor& out) override {
    const cudaStream_t s = op_stream();
    const int64_t row_bytes = x.bytes() / std::max<int64_t>(x.dim(0), 1);
    KR_CHECK(idx.dim(0) == out.dim(0) && out.dtype == x.dtype && row_bytes % 16 == 0);
    cuda::launch_gather_rows(x.data, idx.as<int32_t>(), out.data, static_cast<int>(out.dim(0)), row_bytes, s);
  }

  void qkv_rope_store(const MatmulInput& in, const LinearWeight& w, Tensor& qkv, const QkvParams& p,
                      KvLayer& kv) override;
  void matmul_silu_mul(const MatmulInput& in, const LinearWeight& w, Activation f, Tensor& gate_up, Tensor& act,
                       Fp8Out act_fp8) override;
  void matmul_add_rms_norm(const MatmulInput& in, const LinearWeight& w, Tensor& out, const RmsNorm& out_norm,
                           Tensor& residual, const RmsNorm& norm, Tensor& normed, Fp8Out normed_fp8) override;
  void decode_stack(const DecodeStack& s) override;
  // cuda_decode_stack_trace, cuda_decode_stack_launches (cuda_backend.h).
  bool decode_stack_trace(std::vector<uint64_t>* ns, int* layers, int* ctas);
  int64_t decode_stack_launches() const { return stack_launches_; }
  int decode_stack_ring_depth() const { return stack_ring_depth_; }
  bool fuses_decode_stack(const DecodeStack& s) const override;
  void prepare_decode_stack(const DecodeStack& s) override;
  // W8A8 weights, with CudaOptions::fuse_fp8_act_quant.
  bool writes_fp8_rows(const LinearWeight& w) const override {
    return options_.fuse_fp8_act_quant && w.quantized() && qweight(w).w.w8a8;
  }
  bool attention_writes_fp8_rows() const override { return options_.fp8_attention_out; }

  bool argmax_logprob(const Tensor& logits, int32_t* ids, float* logprobs) override {
    read_argmax(launch_argmax(logits), ids, logprobs);
    return true;
  }

  // The kernel writes a slot of the mapped host buffer (no copy follows it) and the
  // device's fed_ids_dev_, which feed_sampled_ids copies from inside the next step.
  bool implements_launch_argmax() const override { return true; }
  int64_t launch_argmax(const Tensor& logits) override {
    KR_CHECK_MSG(mode_ == Mode::kEager, "launch_argmax inside a step graph");
    const int64_t R = logits.dim(0), V = logits.dim(1);
    KR_CHECK(logits.dtype == DType::kF32 && R <= kMaxSampleRows);
    const int64_t ticket = ++argmax_tickets_;
    const int slot = static_cast<int>(ticket % kArgmaxSlots);
    int32_t* const ids_dev = sample_out_dev_ + slot * kSampleSlotInts;
    float* const lps_dev = reinterpret_cast<float*>(ids_dev + R);
    cuda::launch_argmax_logprob(logits.as<float>(), static_cast<int>(R), static_cast<int>(V), ids_dev, lps_dev,
                                fed_ids_dev_, argmax_scratch_, stream_);
    KR_CUDA_CHECK(cudaEventRecord(argmax_done_[slot], stream_));
    argmax_rows_[slot] = R;
    argmax_slot_ticket_[slot] = ticket;
    return ticket;
  }

  void read_argmax(int64_t ticket, int32_t* ids, float* logprobs) override {
    const int slot = static_cast<int>(ticket % kArgmaxSlots);
    KR_CHECK_MSG(ticket > 0 && argmax_slot_ticket_[slot] == ticket, "read_argmax: the launch was overwritten or never made");
    // The kernel's writes to mapped memory are visible once its event has completed.
    KR_CUDA_CHECK(cudaEventSynchronize(argmax_done_[slot]));
    const int64_t R = argmax_rows_[slot];
    const int32_t* host = sample_out_host_ + slot * kSampleSlotInts;
    std::memcpy(ids, host, R * sizeof(int32_t));
    std::memcpy(logprobs, host + R, R * sizeof(float));
  }

  void feed_sampled_ids(Tensor& ids) override {
    KR_CHECK(ids.dtype == DType::kI32 && ids.ndim == 1 && ids.dim(0) <= kMaxSampleRows);
    KR_CHECK_MSG(argmax_tickets_ > 0, "feed_sampled_ids before any launch_argmax");
    KR_CUDA_CHECK(cudaMemcpyAsync(ids.data, fed_ids_dev_, ids.bytes(), cudaMemcpyDeviceToDevice, op_stream()));
  }

  bool sample(const Tensor& logits, std::span<const DeviceSamplingRow> rows, std::span<const int32_t> penalty_ids,
              std::span<const int32_t> penalty_counts, std::span<const int32_t> eos_ids,
              DeviceSampleResult* out) override {
    if (rows.empty()) return true;
    KR_CHECK_MSG(mode_ == Mode::kEager, "sample inside a step graph");
    KR_CHECK(logits.dtype == DType::kF32 && logits.dim(0) == static_cast<int64_t>(rows.size()) &&
             penalty_ids.size() == penalty_counts.size());
    return sampler_->sample(logits.as<float>(), static_cast<int>(rows.size()), static_cast<int>(logits.dim(1)),
                            rows.data(), penalty_ids.data(), penalty_counts.data(),
                            static_cast<int>(penalty_ids.size()), eos_ids.data(), static_cast<int>(eos_ids.size()),
                            out, stream_);
  }

  bool implements_sample() const override { return true; }

  BackendRates rates() const override;
  bool first_shape_is_slow() const override { return true; }
  // The host tier: pinned memory, copies on the copier's stream (cuda_kv_copy.h).
  void* alloc_host_memory(size_t bytes) override {
    void* p = nullptr;
    return cudaHostAlloc(&p, bytes, cudaHostAllocPortable) == cudaSuccess ? p : nullptr;
  }
  void free_host_memory(void* p, size_t bytes) override {
    (void)bytes;
    if (kv_copier_) kv_copier_->synchronize();
    cudaFreeHost(p);
  }
  uint64_t copy_kv_blocks(std::span<const KvLayer> layers, void* host, std::span<const KvBlockCopy> copies,
                          bool to_host) override {
    KR_CHECK_MSG(mode_ == Mode::kEager, "copy_kv_blocks inside a step graph");
    if (!kv_copier_) kv_copier_ = std::make_unique<cuda::KvBlockCopier>(stream_);
    return kv_copier_->copy(layers, host, copies, to_host);
  }
  bool kv_copies_done(uint64_t ticket) override { return !kv_copier_ || kv_copier_->done(ticket); }
  void wait_kv_copies(uint64_t ticket) override {
    KR_CHECK_MSG(mode_ == Mode::kEager, "wait_kv_copies inside a step graph");
    if (kv_copier_) kv_copier_->order_after(stream_, ticket);
  }

  uint32_t* token_mask_host_buffer(size_t words) override {
    KR_CHECK_MSG(mode_ == Mode::kEager, "token_mask_host_buffer inside a step graph");
    reserve_masks(words, 0);
    return mask_host_;
  }

  void apply_token_mask(Tensor& logits, std::span<const int32_t> rows, const uint32_t* masks,
                        size_t words_per_row) override {
    KR_CHECK_MSG(mode_ == Mode::kEager, "apply_token_mask inside a step graph");
    const int64_t R = logits.dim(0), V = logits.dim(1);
    KR_CHECK(logits.dtype == DType::kF32 && words_per_row * 32 >= static_cast<size_t>(V) &&
             rows.size() <= static_cast<size_t>(R));
    if (rows.empty()) return;
    const size_t words = rows.size() * words_per_row;
    if (masks != mask_host_) {  // not already in the pinned buffer: stage it there
      reserve_masks(words, rows.size());
      std::memcpy(mask_host_, masks, words * sizeof(uint32_t));
    } else {
      reserve_masks(0, rows.size());  // keeps mask_host_ (the caller filled it)
    }
    std::memcpy(mask_rows_host_, rows.data(), rows.size() * sizeof(int32_t));
    KR_CUDA_CHECK(cudaMemcpyAsync(mask_dev_, mask_host_, words * sizeof(uint32_t), cudaMemcpyHostToDevice, stream_));
    KR_CUDA_CHECK(cudaMemcpyAsync(mask_rows_dev_, mask_rows_host_, rows.size() * sizeof(int32_t),
                                  cudaMemcpyHostToDevice, stream_));
    cuda::launch_apply_token_mask(logits.as<float>(), static_cast<int>(V), mask_rows_dev_, static_cast<int>(rows.size()),
                                  mask_dev_, static_cast<int>(words_per_row), stream_);
  }

  bool begin_graph(uint64_t key) override;
  bool replaying_graph() const override { return mode_ == Mode::kReplay; }
  void end_graph() override;

 private:
  enum class Mode { kEager, kCapture, kReplay };
  struct Graph {
    cudaGraphExec_t exec[2] = {};    // one per half of the staging (half_)
    std::vector<size_t> copy_bytes;  // sizes of the staged copies, in order, for the replay check
  };
  // tile_key_ of a decode step: one token per tile, whatever the kernel and group.
  static constexpr int kDecodeTiles = -1;

  // The stream ops enqueue on. While a step graph replays the caller issues no op
  // (Backend::begin_graph): the recording runs at end_graph().
  cudaStream_t op_stream() const {
    KR_CHECK_MSG(mode_ != Mode::kReplay, "an op was issued while a step graph replays");
    return stream_;
  }
  // x' of a fused op's input: x, or the norm of x launched now into in.normed.
  const Tensor& input_rows(const MatmulInput& in) {
    if (!in.norm.present()) return *in.x;
    rms_norm(*in.x, in.norm, *in.normed);
    return *in.normed;
  }
  // x' of a fused op's input that w multiplies, and in *fp8 its FP8 rows where w
  // runs as W8A8 on them (else null): the rows the op before wrote (in.fp8, when
  // their record names x and w), or, with a norm prologue of at most kActRows
  // rows, the norm launched now with its FP8 rows into the W8A8 scratch.
  const Tensor& input_rows(const MatmulInput& in, const LinearWeight& w, const Fp8Rows** fp8, Fp8Rows* scratch) {
    *fp8 = nullptr;
    const int64_t T = in.x->dim(0), K = in.x->dim(1);
    if (!in.norm.present()) {
      const Fp8Rows* r = in.fp8;
      if (r != nullptr && w.quantized() && r->weight == w.quant && r->x == in.x->data && r->rows == T) *fp8 = r;
      return *in.x;
    }
    if (T <= kActRows && writes_fp8_rows(w) && T >= options_.fp8_w8a8_min_tokens) {
      scratch->codes = Tensor(q_fp8_x_, DType::kF8E4M3, {T, K});
      scratch->scales = Tensor(q_fp8_sx_, DType::kF32, {T});
      const Fp8Out o{scratch, &w};
      cuda::RmsNormArgs a = norm_args(nullptr, *in.x, in.norm, *in.normed);
      KR_CHECK(fp8_target(o, *in.normed, &a.q));
      cuda::launch_rms_norm(a, pdl_norm(*in.x, in.norm), op_stream());
      *fp8 = scratch;
      return *in.normed;
    }
    return input_rows(in);
  }
  // Whether an op whose output rows y [T, K] feed o.reader writes their FP8 rows
  // (Fp8Rows: a W8A8 reader at T rows on the W8A8 GEMM): then *q gets the
  // kernel's targets and o.rows the record; else the record is cleared.
  bool fp8_target(const Fp8Out& o, const Tensor& y, cuda::Fp8RowsOut* q) const {
    if (o.rows == nullptr) return false;
    Fp8Rows& r = *o.rows;
    r.clear();
    const int64_t T = y.dim(0), K = y.dim(1);
    // Wider rows than the kernels hold in registers: the reader quantizes them itself.
    if (o.reader == nullptr || !writes_fp8_rows(*o.reader) || T < options_.fp8_w8a8_min_tokens ||
        K > cuda::kFp8RowsMaxWidth)
      return false;
    const cuda::QWeight& w = qweight(*o.reader).w;
    KR_CHECK(w.K == K);
    KR_CHECK(r.codes.dtype == DType::kF8E4M3 && r.codes.ndim == 2 && r.codes.dim(0) >= T && r.codes.dim(1) == K);
    KR_CHECK(r.scales.dtype == DType::kF32 && r.scales.numel() >= T);
    q->codes = r.codes.data;
    q->scales = r.scales.as<float>();
    q->static_input = w.static_input;
    q->input_scale = w.input_scale;
    q->act_scale_ub = w.act_scale_ub;
    r.x = y.data;
    r.rows = T;
    r.weight = o.reader->quant;
    return true;
  }
  // act = f(gate) * up of gate_up, with act's FP8 rows where act_fp8 asks for them.
  void glu(const Tensor& gate_up, Activation f, Tensor& act, const Fp8Out& act_fp8) {
    const cudaStream_t s = op_stream();
    const int T = static_cast<int>(act.dim(0)), I = static_cast<int>(act.dim(1));
    cuda::Fp8RowsOut q;
    if (fp8_target(act_fp8, act, &q)) {
      cuda::launch_silu_mul_fp8(gate_up.data, activation_code(f), act.data, T, I, q, s);
    } else {
      cuda::launch_silu_mul(gate_up.data, activation_code(f), act.data, T, I, s);
    }
  }
  // PDL for a norm launch over the rows of x (CudaOptions::pdl_norms): at most
  // kGemvMaxTokens rows, the steps whose matmuls are GEMVs, and only the x*w form.
  // Measured on the H200 (docs/performance.md): batch-1 decode of the 3B Llama
  // shape 446 -> 470 tok/s with it, Gemma 3 4B's (1 + w) norms 344 -> 332.
  bool pdl_norm(const Tensor& x, const RmsNorm& norm) const {
    return options_.pdl && options_.pdl_norms && norm.kind == NormKind::kTimesWeight &&
           x.dim(0) <= cuda::kGemvMaxTokens;
  }
  // Whether the last kernel launched was one that signals its dependents after its
  // main loop (cuda::launch_qgemm's late_signal); reading it clears it. Only a PDL
  // hint (CudaOptions::pdl_after_late_signal): every kernel waits for the one before
  // it (pdl_wait) before reading what it wrote, whatever this says.
  bool take_late_signal() { return std::exchange(late_signal_, false) && options_.pdl && options_.pdl_after_late_signal; }
  static int norm_code(NormKind k) {
    return k == NormKind::kTimesOnePlusWeight ? cuda::kNormTimesOnePlusWeight : cuda::kNormTimesWeight;
  }
  static int activation_code(Activation f) { return f == Activation::kGeluTanh ? cuda::kActGeluTanh : cuda::kActSilu; }
  // One norm launch: out = norm(residual += x) or norm(x).
  static cuda::RmsNormArgs norm_args(void* residual, const Tensor& x, const RmsNorm& norm, Tensor& out) {
    cuda::RmsNormArgs a;
    a.residual = residual;
    a.x = x.data;
    a.w = norm.w->data;
    a.out = out.data;
    a.eps = norm.eps;
    a.kind = norm_code(norm.kind);
    a.T = static_cast<int>(x.dim(0));
    a.H = static_cast<int>(x.dim(1));
    return a;
  }
  // The rope kernel's arguments for QkvParams; with kv, it also stores k and v.
  cuda::RopeArgs rope_args(Tensor& qkv, const QkvParams& p, KvLayer* kv) const {
    cuda::RopeArgs a;
    a.qkv = qkv.data;
    a.positions = positions_dev();
    a.inv_freq = p.rope->inv_freq.as<float>();
    a.T = static_cast<int>(qkv.dim(0));
    a.q_heads = p.q_heads;
    a.kv_heads = p.kv_heads;
    a.head_dim = p.head_dim();
    if (p.bias != nullptr) a.bias = p.bias->data;
    if (p.q_norm.present()) {
      a.q_norm_w = p.q_norm.w->data;
      a.k_norm_w = p.k_norm.w->data;
      a.norm_eps = p.q_norm.eps;
      a.norm_kind = norm_code(p.q_norm.kind);
    }
    if (kv != nullptr) {
      a.slot_mapping = slots_dev();
      a.k_cache = kv->k.data;
      a.v_cache = kv->v.data;
      a.kv_fp8 = kv->fp8();
      a.k_scale = kv->k_scale;
      a.v_scale = kv->v_scale;
    }
    return a;
  }
  // The batch-1 fused GEMV of `in` (with its norm prologue) and w into out.
  static cuda::Gemv1Args gemv1_args(const MatmulInput& in, const Tensor& w, Tensor& out) {
    cuda::Gemv1Args a;
    a.x = in.x->data;
    a.w = w.data;
    a.out = out.data;
    a.N = static_cast<int>(w.dim(0));
    a.K = static_cast<int>(w.dim(1));
    if (in.norm.present()) {
      a.norm_w = in.norm.w->data;
      a.eps = in.norm.eps;
      a.norm_kind = norm_code(in.norm.kind);
      a.normed = in.normed->data;
    }
    return a;
  }
  void check_norm(const Tensor& x, const RmsNorm& norm, const Tensor& out) const {
    KR_CHECK(norm.present());
    const Tensor& w = *norm.w;
    KR_CHECK(x.dtype == DType::kBF16 && out.dtype == DType::kBF16 && w.dtype == DType::kBF16);
    KR_CHECK(x.ndim == 2 && out.numel() == x.numel() && w.numel() == x.dim(1) && x.dim(1) % 8 == 0 &&
             x.dim(1) <= 32768);
  }
  void check_input(const MatmulInput& in, const LinearWeight& w) const {
    KR_CHECK(in.x->ndim == 2 && in.x->dim(1) == w.cols());
    if (in.norm.present()) check_norm(*in.x, in.norm, *in.normed);
  }
  // The CUDA image of a quantized LinearWeight (made by this backend's upload_quantized).
  const CudaQuantWeight& qweight(const LinearWeight& w) const {
    const auto* q = dynamic_cast<const CudaQuantWeight*>(w.quant);
    KR_CHECK_MSG(q != nullptr && owned_quant_.count(q) != 0, "CudaBackend: a quantized weight of another backend");
    return *q;
  }
  // Why the decode stack kernel does not take s's layers (weights, norms, attention,
  // cache type, sizes; not the images or the step): empty when it takes them.
  std::string decode_stack_refusal(const DecodeStack& s) const;
  // The decode stack kernel's arguments for s at this step (false where it does not
  // run it: options, decode_stack_refusal, weights not prepared, the step).
  bool decode_stack_args(const DecodeStack& s, cuda::DecodeStackArgs* a) const;
  // Rows from which `q` runs on a dequantized copy and cuBLAS (CudaOptions).
  int dense_min_tokens(const cuda::QWeight& q) const {
    return q.code == cuda::QCode::kU8 ? options_.quant8_dense_min_tokens : options_.quant_dense_min_tokens;
  }
  // Whether T rows of `q` run on the dequantizing tensor-core kernels (fused
  // epilogues included) rather than cuBLAS on a dequantized copy or the FP8 W8A8 GEMM.
  bool quant_kernels_for(const cuda::QWeight& q, int64_t T) const {
    return T < dense_min_tokens(q) && T <= kActRows && !(q.w8a8 && T >= options_.fp8_w8a8_min_tokens);
  }
  // out = x · Wᵀ for a quantized weight (any T, no epilogue); fp8: x's FP8 rows
  // for q's W8A8 GEMM (input_rows), or null.
  void quant_matmul(const Tensor& x, const cuda::QWeight& q, Tensor& out, const Fp8Rows* fp8 = nullptr);
  // The W8A8 GEMM out [T, N] bf16 = xq [T, K] e4m3 · q's codes, scaled by sx [T] and
  // q's row scales: the small-T kernel (CudaOptions::fp8_small_gemm_max_tokens) or,
  // above it, the wgmma kernel (fp8_wgmma_gemm_max_tokens) when it takes the shape,
  // else cuBLASLt; false when none runs (nothing enqueued).
  bool fp8_gemm(const cuda::QWeight& q, const void* xq, const float* sx, int T, void* out, cudaStream_t s);
  // The decode-size FP8 GEMMs' arguments for q (fp8_gemm).
  cuda::Fp8SmallGemmArgs fp8_gemm_args(const cuda::QWeight& q, const void* xq, const float* sx, int T, void* out) const;
  // qkv = x · Wᵀ with bias, RoPE and the k/v store in the wgmma GEMM's epilogue
  // (CudaOptions::fp8_qkv_rope_epilogue) for a W8A8 q at the wgmma GEMM's sizes, on
  // x's FP8 rows (fp8, as input_rows gives them) or x quantized here; false
  // (nothing enqueued) where it does not apply.
  bool fp8_qkv_rope(const Tensor& x, const cuda::QWeight& q, Tensor& qkv, const Fp8Rows* fp8, const QkvParams& p,
                    KvLayer& kv);
  // The tensor-core kernel with epilogue `e` and `in`'s norm prologue (run unfused
  // first where the kernel cannot take it); false (nothing run) when the kernel
  // does not support the epilogue's shapes.
  bool quant_kernel(const MatmulInput& in, const cuda::QWeight& q, Tensor& out, cuda::QEpilogue e,
                    cuda::QGemmArgs a);
  void check_qkv(const Tensor& qkv, const QkvParams& p) const {
    const RopeParams& rope = *p.rope;
    KR_CHECK(qkv.dtype == DType::kBF16 && qkv.dim(0) == meta_.num_tokens && qkv.dim(1) == p.width());
    KR_CHECK(rope.head_dim % 2 == 0 && rope.head_dim <= 1024 && rope.inv_freq.dtype == DType::kF32 &&
             rope.inv_freq.numel() == rope.head_dim / 2);
    KR_CHECK(p.bias == nullptr || (p.bias->dtype == DType::kBF16 && p.bias->numel() == qkv.dim(1)));
    KR_CHECK(p.q_norm.present() == p.k_norm.present());
    if (p.q_norm.present()) {
      // The kernel reduces a head over its D/2 threads: a power of two up to 32, or a multiple of 32.
      const int half = rope.head_dim / 2;
      KR_CHECK_MSG((half <= 32 && (half & (half - 1)) == 0) || half % 32 == 0, "rope: head_dim unsupported with q/k norms");
      KR_CHECK(p.q_norm.w->dtype == DType::kBF16 && p.k_norm.w->dtype == DType::kBF16 &&
               p.q_norm.w->numel() == rope.head_dim && p.k_norm.w->numel() == rope.head_dim);
      KR_CHECK(p.q_norm.kind == p.k_norm.kind && p.q_norm.eps == p.k_norm.eps);
    }
  }
  void check_kv(const KvLayer& kv, int kv_heads, int head_dim) const {
    // bf16, or an FP8 cache (e4m3 bytes with positive per-layer scales).
    KR_CHECK((kv.k.dtype == DType::kBF16 || kv.k.dtype == DType::kF8E4M3) && kv.v.dtype == kv.k.dtype &&
             kv.k.numel() % (int64_t{kv_heads} * head_dim) == 0);
    KR_CHECK(!kv.fp8() || (kv.k_scale > 0.0f && kv.v_scale > 0.0f));
  }
  // Forgets every recorded step graph (the stream is idle: free() synchronised it).
  void drop_graphs() {
    for (auto& [key, g] : graphs_)
      for (cudaGraphExec_t e : g.exec)
        if (e != nullptr) KR_CUDA_CHECK(cudaGraphExecDestroy(e));
    graphs_.clear();
  }
  // The recording's staged copies (memcpy nodes reading staging_[from]) made to read
  // the same offsets of staging_[from ^ 1]: the other half's instance of one recording.
  void retarget_staged_copies(cudaGraph_t graph, int from, size_t expected_copies);
  // Appends (seq, first token, count) tiles of at most per_tile tokens for every
  // sequence whose new-token count n satisfies min_n <= n <= max_n; returns the
  // largest context of those sequences (0 when none).
  int append_tiles(int per_tile, std::vector<int32_t>& out, int min_n = 1, int max_n = INT32_MAX) const;
  // The tiles of a step that is not decode-only, for the kernel family of `key`.
  void build_tiles(int key, bool flash, int group, int head_dim);
  // Tile layout key of an attention call: the flash kernels' layout depends on the
  // group and the head dim, the old kernel's on the group only.
  static int tile_key(bool flash, int group, int head_dim) { return flash ? (group << 10) | head_dim : group; }
  // pdl_decode: the decode kernel launched with PDL (after a late-signalling GEMM).
  bool flash_attention(const Tensor& qkv, const KvLayer& kv, const AttentionParams& p, int group, Tensor& out,
                       const cuda::Fp8RowsOut* q, bool pdl_decode);
  void staged_copy(void* dst, const void* src, size_t bytes);
  const int32_t* positions_dev() const { return meta_dev_ + off_positions_; }
  const int32_t* slots_dev() const { return meta_dev_ + off_slots_; }

  const CudaOptions options_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  void* cublas_ws_ = nullptr;
  std::unordered_map<void*, size_t> allocations_;  // device pointer -> bytes
  size_t allocated_bytes_ = 0;                       // their sum

  // Step metadata: host copy, the attention tiles built from it, and the device image
  // [positions | slots | context_lens | block_tables | tiles] in meta_dev_.
  StepMetadata meta_;
  std::vector<int32_t> meta_host_;
  int32_t* meta_dev_ = nullptr;
  size_t off_positions_ = 0, off_slots_ = 0, off_ctx_ = 0, off_tables_ = 0, off_tiles_ = 0;
  int num_tiles_ = 0;
  bool decode_only_ = false;
  int tile_key_ = 0;  // tile_key() the tiles were built for (0: none yet; kDecodeTiles: decode step)
  // Flash layout (steps that are not decode-only): prefill tiles first, then
  // decode tiles; the largest context each kind of tile attends.
  int num_prefill_tiles_ = 0;
  int prefill_max_keys_ = 0, decode_max_keys_ = 0;
  void* attn_scratch_ = nullptr;

  // launch_argmax's slots, each ids [R] then logprobs [R] (as int32 bits): pinned, mapped;
  // the device's address of the same bytes. Slot ticket % kArgmaxSlots; its event, rows
  // and ticket. fed_ids_dev_ [kMaxSampleRows]: the latest launch's ids on the device.
  static constexpr int64_t kSampleSlotInts = 2 * int64_t{kMaxSampleRows};
  int32_t* sample_out_host_ = nullptr;
  int32_t* sample_out_dev_ = nullptr;
  int32_t* fed_ids_dev_ = nullptr;
  cuda::ArgmaxScratch argmax_scratch_;  // the split argmax's partials and tickets (every argmax of the stream)
  cudaEvent_t argmax_done_[kArgmaxSlots] = {};
  int64_t argmax_rows_[kArgmaxSlots] = {};
  int64_t argmax_slot_ticket_[kArgmaxSlots] = {};
  int64_t argmax_tickets_ = 0;
  // Token masks: pinned host words (token_mask_host_buffer) and their device
  // copy, grown on demand; the rows they belong to.
  void reserve_masks(size_t words, size_t rows);
  uint32_t* mask_host_ = nullptr;
  uint32_t* mask_dev_ = nullptr;
  size_t mask_capacity_words_ = 0;
  int32_t* mask_rows_host_ = nullptr;
  int32_t* mask_rows_dev_ = nullptr;
  std::unique_ptr<cuda::CudaSampler> sampler_;  // Backend::sample
  std::unique_ptr<cuda::KvBlockCopier> kv_copier_;  // Backend::copy_kv_blocks, made at first use

  // Quantized weights (upload_quantized) and the scratch their ops use.
  int num_sms_ = 0;
  std::vector<std::unique_ptr<CudaQuantWeight>> quant_weights_;
  std::unordered_set<const QuantizedWeight*> owned_quant_;
  float* q_partials_ = nullptr;  // [kQPartialFloats] split-K partials
  int* q_counters_ = nullptr;    // [kQCounters] arrival counters, zero between launches
  void* q_dense_ = nullptr;      // bf16 [N, K] of the largest quantized weight (dense path)
  size_t q_dense_bytes_ = 0;
  void* q_gather_ = nullptr;     // bf16 [kActRows, K] act-order activations
  size_t q_gather_bytes_ = 0;
  void* q_fp8_x_ = nullptr;      // e4m3 [kActRows, K] W8A8 activations
  size_t q_fp8_x_bytes_ = 0;
  float* q_fp8_sx_ = nullptr;    // [kActRows] their scales
  // The decode stack kernel's scratch (cuda_decode_stack.h): f32 sums, zero between
  // launches, and the attention splits' partials, sized for the largest model
  // prepared; its grid barrier.
  float* stack_sums_ = nullptr;
  size_t stack_sums_floats_ = 0;
  float* stack_partials_ = nullptr;
  size_t stack_partial_floats_ = 0;
  int* stack_barrier_ = nullptr;
  // CudaOptions::decode_stack_trace: u64 [layers][num_sms_][kStackTracePoints], the
  // layers of the last launch.
  unsigned long long* stack_trace_ = nullptr;
  size_t stack_trace_words_ = 0;
  int stack_trace_layers_ = 0;
  int64_t stack_launches_ = 0;  // cuda_decode_stack_launches
  int stack_ring_depth_ = 0;    // cuda_decode_stack_ring_depth: the last launch's
  // The kernel's launch arguments (~15 KB), filled by decode_stack_args: one buffer
  // instead of an allocation at every fuses_decode_stack and decode_stack call.
  std::unique_ptr<cuda::DecodeStackArgs> stack_args_ = std::make_unique<cuda::DecodeStackArgs>();
  // The RoPE epilogue's (cos, sin) table [kFp8WgmmaMaxTokens, 64] (fp8_qkv_rope),
  // computed at a step's first use for its inv_freq: step_serial_ counts
  // set_step_metadata calls, rope_table_serial_ / rope_table_freq_ name the last fill.
  float2* rope_cos_sin_ = nullptr;
  uint64_t step_serial_ = 0, rope_table_serial_ = 0;
  bool late_signal_ = false;  // take_late_signal()
  const void* rope_table_freq_ = nullptr;
  std::unique_ptr<cuda::Fp8Gemm> fp8_gemm_;

  // Graphs.
  Mode mode_ = Mode::kEager;
  // The staging in two halves, used in turn (half_): a step graph's copies read its
  // half at replay time, so the next step may fill the other half while it runs (an
  // overlapped decode launches step t + 1 before step t is done). graph_done_[h]: the
  // last replay from half h is done. A key is recorded once; its recording is
  // instantiated twice, once for each half (retarget_staged_copies).
  std::unordered_map<uint64_t, Graph> graphs_;
  uint64_t graph_key_ = 0;
  int half_ = 0;
  char* staging_[2] = {};  // pinned; graph copies read from here at replay time
  size_t staging_used_ = 0;
  size_t staged_copies_ = 0;
  cudaEvent_t graph_done_[2] = {};
};

void CudaBackend::reserve_masks(size_t words, size_t rows) {
  KR_CHECK(rows <= static_cast<size_t>(kMaxSampleRows));
  if (mask_rows_host_ == nullptr) {
    KR_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&mask_rows_host_), kMaxSampleRows * sizeof(int32_t),
                                cudaHostAllocDefault));
    KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&mask_rows_dev_), kMaxSampleRows * sizeof(int32_t)));
  }
  if (words <= mask_capacity_words_) return;
  // A copy from the old buffer may still be in flight.
  KR_CUDA_CHECK(cudaStreamSynchronize(stream_));
  if (mask_host_ != nullptr) KR_CUDA_CHECK(cudaFreeHost(mask_host_));
  if (mask_dev_ != nullptr) KR_CUDA_CHECK(cudaFree(mask_dev_));
  const size_t capacity = std::max(words, mask_capacity_words_ * 2);
  KR_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&mask_host_), capacity * sizeof(uint32_t), cudaHostAllocDefault));
  KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&mask_dev_), capacity * sizeof(uint32_t)));
  mask_capacity_words_ = capacity;
}

void CudaBackend::staged_copy(void* dst, const void* src, size_t bytes) {
  const size_t off = staging_used_;
  KR_CHECK_MSG(off + bytes <= kStagingBytes, "step graph: staged copies exceed the staging buffer");
  std::memcpy(staging_[half_] + off, src, bytes);
  staging_used_ = align_up(off + bytes, 256);
  Graph& g = graphs_[graph_key_];
  if (mode_ == Mode::kCapture) {
    g.copy_bytes.push_back(bytes);
    KR_CUDA_CHECK(cudaMemcpyAsync(dst, staging_[half_] + off, bytes, cudaMemcpyHostToDevice, stream_));
  } else {
    KR_CHECK_MSG(staged_copies_ < g.copy_bytes.size() && g.copy_bytes[staged_copies_] == bytes,
                 "step graph replay: copies differ from the recorded step");
  }
  ++staged_copies_;
}

int CudaBackend::append_tiles(int per_tile, std::vector<int32_t>& out, int min_n, int max_n) const {
  int max_ctx = 0;
  for (int s = 0; s < meta_.num_seqs; ++s) {
    const int b = meta_.query_start[s], e = meta_.query_start[s + 1];
    if (e - b < min_n || e - b > max_n) continue;
    max_ctx = std::max(max_ctx, meta_.context_lens[s]);
    for (int t = b; t < e; t += per_tile) {
      out.push_back(s);
      out.push_back(t);
      out.push_back(std::min(per_tile, e - t));
    }
  }
  return max_ctx;
}

void CudaBackend::set_step_metadata(const StepMetadata& m) {
  KR_CHECK(static_cast<int>(m.positions.size()) == m.num_tokens &&
           static_cast<int>(m.slot_mapping.size()) == m.num_tokens);
  KR_CHECK(static_cast<int>(m.query_start.size()) == m.num_seqs + 1 &&
           static_cast<int>(m.context_lens.size()) == m.num_seqs);
  KR_CHECK(m.block_tables.size() == static_cast<size_t>(m.num_seqs) * m.max_blocks_per_seq);
  meta_ = m;
  ++step_serial_;
  late_signal_ = false;  // a step starts with no kernel before it to follow early
  decode_only_ = true;
  for (int s = 0; s < m.num_seqs; ++s) decode_only_ &= m.query_start[s + 1] - m.query_start[s] <= 1;
  KR_CHECK_MSG(mode_ == Mode::kEager || decode_only_, "a step graph holds a decode step (one token per sequence)");
  // One copy: positions and slots (RoPE, the KV store), context lengths and block
  // tables (attention), and for a decode step its tiles, one per sequence whatever
  // the GQA group. Other steps get their tiles at the first attention(), which
  // knows the group.
  off_positions_ = 0;
  off_slots_ = static_cast<size_t>(m.num_tokens);
  off_ctx_ = 2 * off_slots_;
  off_tables_ = off_ctx_ + m.num_seqs;
  off_tiles_ = off_tables_ + m.block_tables.size();
  const size_t max_tiles = static_cast<size_t>(m.num_tokens) + m.num_seqs;
  KR_CHECK_MSG(off_tiles_ + 3 * max_tiles <= kMetaInts, "step metadata too large for the device buffer");
  meta_host_.resize(off_tiles_);
  std::copy(m.positions.begin(), m.positions.end(), meta_host_.begin());
  std::copy(m.slot_mapping.begin(), m.slot_mapping.end(), meta_host_.begin() + off_slots_);
  std::copy(m.context_lens.begin(), m.context_lens.end(), meta_host_.begin() + off_ctx_);
  std::copy(m.block_tables.begin(), m.block_tables.end(), meta_host_.begin() + off_tables_);
  tile_key_ = 0;
  num_tiles_ = 0;
  num_prefill_tiles_ = 0;
  if (decode_only_) {
    append_tiles(1, meta_host_);
    num_tiles_ = static_cast<int>((meta_host_.size() - off_tiles_) / 3);
    tile_key_ = kDecodeTiles;
  }
  Tensor dst(meta_dev_, DType::kI32, {static_cast<int64_t>(meta_host_.size())});
  copy_from_host(dst, meta_host_.data(), meta_host_.size() * sizeof(int32_t));
}

void CudaBackend::build_tiles(int key, bool flash, int group, int head_dim) {
  std::vector<int32_t> tiles;
  num_prefill_tiles_ = 0;
  if (!flash) {
    append_tiles(cuda::attn_tile_tokens(group), tiles);
  } else {
    // Prefill tiles: sequences with several new tokens (and every sequence when the
    // group is too large for decode tiles); then decode tiles: one new token each.
    const int decode_tokens = cuda::flash_decode_tile_tokens(group);
    const int min_prefill = decode_tokens > 0 ? 2 : 1;
    prefill_max_keys_ = append_tiles(cuda::flash_prefill_tile_tokens(group, head_dim), tiles, min_prefill);
    num_prefill_tiles_ = static_cast<int>(tiles.size() / 3);
    decode_max_keys_ = decode_tokens > 0 ? append_tiles(1, tiles, 1, 1) : 0;
  }
  num_tiles_ = static_cast<int>(tiles.size() / 3);
  static_assert(sizeof(cuda::AttnTile) == 3 * sizeof(int32_t));
  KR_CHECK_MSG(off_tiles_ + tiles.size() <= kMetaInts, "step metadata too large for the device buffer");
  Tensor dst(meta_dev_ + off_tiles_, DType::kI32, {static_cast<int64_t>(tiles.size())});
  copy_from_host(dst, tiles.data(), tiles.size() * sizeof(int32_t));
  tile_key_ = key;
}

void CudaBackend::matmul(const Tensor& x, const LinearWeight& weight, Tensor& out) {
  const cudaStream_t s = op_stream();
  const int64_t T = x.dim(0), K = x.dim(1), N = weight.rows();
  KR_CHECK(weight.cols() == K && out.dim(0) == T && out.dim(1) == N);
  KR_CHECK(out.dtype == DType::kBF16 || out.dtype == DType::kF32);
  if (weight.quantized()) {
    KR_CHECK(x.dtype == DType::kBF16);
    quant_matmul(x, qweight(weight).w, out);
    return;
  }
  const Tensor& w = weight.dense;
  KR_CHECK(x.dtype == DType::kBF16 && w.dtype == DType::kBF16);
  const bool out_f32 = out.dtype == DType::kF32;
  if (T == 0) return;
  if (T <= cuda::kGemvMaxTokens && K % 8 == 0) {
    cuda::launch_gemv(x.data, w.data, out.data, out_f32, static_cast<int>(T), static_cast<int>(N),
                      static_cast<int>(K), options_.pdl, s);
    return;
  }
  // Row-major out[T, N] = x[T, K] · w[N, K]ᵀ is column-major outᵀ[N, T] = w · xᵀ.
  const float alpha = 1.0f, beta = 0.0f;
  KR_CUDA_CHECK(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(T),
                             static_cast<int>(K), &alpha, w.data, CUDA_R_16BF, static_cast<int>(K), x.data,
                             CUDA_R_16BF, static_cast<int>(K), &beta, out.data, out_f32 ? CUDA_R_32F : CUDA_R_16BF,
                             static_cast<int>(N), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void CudaBackend::qkv_rope_store(const MatmulInput& in, const LinearWeight& weight, Tensor& qkv, const QkvParams& p,
                                 KvLayer& kv) {
  const cudaStream_t s = op_stream();
  check_input(in, weight);
  check_qkv(qkv, p);
  check_kv(kv, p.kv_heads, p.head_dim());
  KR_CHECK(weight.rows() == qkv.dim(1) && in.x->dim(0) == qkv.dim(0));
  KR_CHECK(in.x->dtype == DType::kBF16 && qkv.dtype == DType::kBF16);
  const int T = static_cast<int>(qkv.dim(0));
  if (weight.quantized()) {
    const cuda::QWeight& q = qweight(weight).w;
    // Per-head q/k norms (Qwen3, Gemma 3) need a whole head per block: those run
    // in the rope kernel after the matmul.
    if (quant_kernels_for(q, T) && !p.q_norm.present()) {
      // One kernel: a block owns dims i and i + D/2 of one head for its tokens,
      // adds the bias, rotates them and stores k and v rows into the cache.
      cuda::QGemmArgs a;
      a.positions = positions_dev();
      a.slots = slots_dev();
      a.inv_freq = p.rope->inv_freq.as<float>();
      a.k_cache = kv.k.data;
      a.v_cache = kv.v.data;
      a.kv_fp8 = kv.fp8();
      a.k_scale = kv.k_scale;
      a.v_scale = kv.v_scale;
      a.q_heads = p.q_heads;
      a.kv_heads = p.kv_heads;
      a.head_dim = p.head_dim();
      if (p.bias != nullptr) a.bias = p.bias->data;
      if (quant_kernel(in, q, qkv, cuda::QEpilogue::kRope, a)) return;
    }
    const Fp8Rows* fp8 = nullptr;
    Fp8Rows scratch;
    const Tensor& x = input_rows(in, weight, &fp8, &scratch);
    if (fp8_qkv_rope(x, q, qkv, fp8, p, kv)) return;
    quant_matmul(x, q, qkv, fp8);
    cuda::launch_rope(rope_args(qkv, p, &kv), s);
    return;
  }
  const Tensor& w = weight.dense;
  KR_CHECK(w.dtype == DType::kBF16);
  if (T == 1) {
    // One GEMV: a block owns dims i and i + D/2 of one head, adds the bias, rotates
    // its two outputs and stores k and v rows into the cache; with q/k norms the
    // last block of each head normalises and rotates the whole head.
    cuda::Gemv1Args a = gemv1_args(in, w, qkv);
    a.positions = positions_dev();
    a.slots = slots_dev();
    a.inv_freq = p.rope->inv_freq.as<float>();
    a.k_cache = kv.k.data;
    a.v_cache = kv.v.data;
    a.kv_fp8 = kv.fp8();
    a.k_scale = kv.k_scale;
    a.v_scale = kv.v_scale;
    a.q_heads = p.q_heads;
    a.kv_heads = p.kv_heads;
    a.head_dim = p.head_dim();
    if (p.bias != nullptr) a.bias = p.bias->data;
    cuda::Gemv1Epilogue epi = cuda::Gemv1Epilogue::kRope;
    if (p.q_norm.present()) {
      epi = cuda::Gemv1Epilogue::kRopeQkNorm;
      a.q_norm_w = p.q_norm.w->data;
      a.k_norm_w = p.k_norm.w->data;
      a.qk_eps = p.q_norm.eps;
      a.qk_kind = norm_code(p.q_norm.kind);
    }
    if (cuda::launch_gemv1(a, epi, options_.pdl, s)) return;
  }
  // The matmul, then one kernel that adds the bias, normalises and rotates q and k,
  // and stores k and v.
  matmul(input_rows(in), w, qkv);
  cuda::launch_rope(rope_args(qkv, p, &kv), s);
}

void CudaBackend::matmul_silu_mul(const MatmulInput& in, const LinearWeight& weight, Activation f, Tensor& gate_up,
                                  Tensor& act, Fp8Out act_fp8) {
  const cudaStream_t s = op_stream();
  check_input(in, weight);
  // act's FP8 rows (for a W8A8 down projection) come from the GLU kernel below; the
  // paths that end earlier (the fused epilogues, of at most 8 rows or not W8A8 at
  // this T) leave them unwritten, and the record says so.
  if (act_fp8.rows != nullptr) act_fp8.rows->clear();
  const int64_t T = in.x->dim(0), I = act.dim(1);
  KR_CHECK(weight.rows() == 2 * I && gate_up.dim(0) == T && gate_up.dim(1) == 2 * I && act.dim(0) == T && I % 8 == 0);
  KR_CHECK(in.x->dtype == DType::kBF16 && gate_up.dtype == DType::kBF16 && act.dtype == DType::kBF16);
  if (weight.quantized()) {
    const cuda::QWeight& q = qweight(weight).w;
    if (quant_kernels_for(q, T)) {
      // One kernel: a block owns rows i of the gate and I + i of the up projection.
      cuda::QGemmArgs a;
      a.act = act.data;
      a.activation = activation_code(f);
      if (quant_kernel(in, q, gate_up, cuda::QEpilogue::kSwiglu, a)) return;
    }
    const Fp8Rows* fp8 = nullptr;
    Fp8Rows scratch;
    const Tensor& x = input_rows(in, weight, &fp8, &scratch);
    quant_matmul(x, q, gate_up, fp8);
    glu(gate_up, f, act, act_fp8);
    return;
  }
  const Tensor& w = weight.dense;
  KR_CHECK(w.dtype == DType::kBF16);
  if (T == 1) {
    // One GEMV: a block owns rows i of the gate and I + i of the up projection.
    cuda::Gemv1Args a = gemv1_args(in, w, gate_up);
    a.act = act.data;
    a.activation = activation_code(f);
    if (cuda::launch_gemv1(a, cuda::Gemv1Epilogue::kSwiglu, options_.pdl, s)) return;
  }
  matmul(input_rows(in), w, gate_up);
  glu(gate_up, f, act, act_fp8);
}

StatusOr<LinearWeight> CudaBackend::upload_quantized(const QuantizedMatrix& m) {
  KR_CHECK_MSG(mode_ == Mode::kEager, "upload_quantized inside a step graph");
  KR_ASSIGN_OR_RETURN(cuda::QRepacked r, cuda::repack_quantized(m));
  auto q = std::make_unique<CudaQuantWeight>();
  cuda::QWeight& w = q->w;
  // Device copies, owned like every allocation (freed with the backend).
  auto upload = [&](const void* host, size_t bytes) -> void* {
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    KR_CUDA_CHECK(cudaMalloc(&p, bytes));
    allocations_.emplace(p, bytes);
    allocated_bytes_ += bytes;
    KR_CUDA_CHECK(cudaMemcpyAsync(p, host, bytes, cudaMemcpyHostToDevice, stream_));  // ordered before the kernels
    return p;
  };
  w.code = r.code;
  w.N = static_cast<int>(r.N);
  w.K = static_cast<int>(r.K);
  w.Np = static_cast<int>(r.Np);
  w.Kp = static_cast<int>(r.Kp);
  w.group = static_cast<int>(r.group);
  w.groups = static_cast<int>(r.groups);
  w.steps = static_cast<int>(r.steps);
  w.meta_f16 = r.meta_f16;
  w.has_bias = r.has_bias;
  size_t code_bytes = 0;
  if (r.code == cuda::QCode::kFp8) {
    code_bytes = r.fp8.size();
    w.codes = upload(r.fp8.data(), code_bytes);
  } else {
    code_bytes = r.codes.size() * sizeof(uint32_t);
    w.codes = upload(r.codes.data(), code_bytes);
  }
  const size_t meta_bytes = r.meta.size() * sizeof(uint32_t);
  w.meta = static_cast<const uint32_t*>(upload(r.meta.data(), meta_bytes));
  w.perm = static_cast<const int32_t*>(upload(r.perm.data(), r.perm.size() * sizeof(int32_t)));
  w.w8a8 = r.w8a8;
  w.row_scale = static_cast<const float*>(upload(r.row_scale.data(), r.row_scale.size() * sizeof(float)));
  w.static_input = r.static_input;
  w.input_scale = r.input_scale;
  w.act_scale_ub = r.act_scale_ub;
  // Scratch sized for the largest weight: a dequantized copy (rows >=
  // quant_dense_min_tokens, quant8_dense_min_tokens), gathered activations (act-order), FP8 activations
  // (W8A8). A smaller buffer it replaces stays allocated (in allocations_): step
  // graphs recorded before may still use it.
  auto grow = [&](void** p, size_t* have, size_t need) {
    if (need <= *have) return;
    KR_CUDA_CHECK(cudaMalloc(p, need));
    allocations_.emplace(*p, need);
    allocated_bytes_ += need;
    *have = need;
  };
  grow(&q_dense_, &q_dense_bytes_, static_cast<size_t>(r.N) * r.K * 2);
  if (!r.perm.empty()) grow(&q_gather_, &q_gather_bytes_, static_cast<size_t>(kActRows) * r.K * 2);
  if (r.w8a8) {
    grow(&q_fp8_x_, &q_fp8_x_bytes_, static_cast<size_t>(kActRows) * r.K);
    if (q_fp8_sx_ == nullptr) {
      KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&q_fp8_sx_), kActRows * sizeof(float)));
      allocations_.emplace(q_fp8_sx_, kActRows * sizeof(float));
      allocated_bytes_ += kActRows * sizeof(float);
    }
    if (rope_cos_sin_ == nullptr) {
      const size_t bytes = sizeof(float2) * cuda::kFp8WgmmaMaxTokens * (cuda::kFp8QkvRopeHeadDim / 2);
      KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&rope_cos_sin_), bytes));
      allocations_.emplace(rope_cos_sin_, bytes);
      allocated_bytes_ += bytes;
    }
  }
  LinearWeight lw;
  lw.quant = q.get();
  lw.quant_rows = r.N;
  lw.quant_cols = r.K;
  lw.quant_bytes = code_bytes + meta_bytes;
  lw.quant_desc = r.desc;
  owned_quant_.insert(q.get());
  quant_weights_.push_back(std::move(q));
  return lw;
}

std::string CudaBackend::decode_stack_refusal(const DecodeStack& s) const {
  if (s.layers.empty()) return "no layers";
  const DecodeLayer& d0 = s.layers[0];
  const RmsNorm& n0 = d0.input_norm;
  const QkvParams& q0 = *d0.qkv_params;
  const cuda::QWeight* first = nullptr;
  for (size_t l = 0; l < s.layers.size(); ++l) {
    const DecodeLayer& d = s.layers[l];
    // Built only for a refusal: this runs at every eager one-token step.
    auto at = [l] { return "layer " + std::to_string(l) + ": "; };
    for (const LinearWeight* w : {d.qkv, d.o, d.gate_up, d.down}) {
      if (!w->quantized()) return at() + "a Linear that is not quantized";
      const cuda::QWeight& q = qweight(*w).w;
      if (!cuda::stack_takes(q))
        return at() + "a Linear not 4-bit with 64- or 128-column groups without act-order (" + w->quant_desc + ")";
      if (first == nullptr) first = &q;
      if (q.group != first->group || q.has_bias != first->has_bias) return at() + "Linears of two quantization forms";
    }
    if (!d.input_norm.present() || !d.mlp_norm.present() || d.input_norm.kind != n0.kind ||
        d.mlp_norm.kind != n0.kind || d.input_norm.eps != n0.eps || d.mlp_norm.eps != n0.eps)
      return at() + "norms of another form";
    const QkvParams& q = *d.qkv_params;
    const AttentionParams& p = *d.attn_params;
    if (q.bias != nullptr || q.q_norm.present()) return at() + "q/k/v biases or q/k norms";
    if (q.rope != q0.rope || p.sliding_window != 0 || p.softcap != 0.0f || p.scale != d0.attn_params->scale)
      return at() + "a sliding window, a soft-cap or another RoPE";
    if (q.head_dim() != cuda::kStackHeadDim || p.head_dim != cuda::kStackHeadDim || q.q_heads != p.q_heads ||
        q.kv_heads != p.kv_heads || q.q_heads != q0.q_heads || q.kv_heads != q0.kv_heads)
      return at() + "head dim " + std::to_string(q.head_dim()) + " (the kernel takes " +
             std::to_string(cuda::kStackHeadDim) + ")";
    if (d.kv->k.dtype != DType::kBF16 || d.kv->v.dtype != DType::kBF16) return "an FP8 KV cache";
  }
  if (!s.final_norm.present() || s.final_norm.kind != n0.kind || s.final_norm.eps != n0.eps)
    return "a final norm of another form";
  const int H = qweight(*d0.o).w.N, I = qweight(*d0.down).w.K;
  if (!cuda::stack_shapes_supported(H, I, q0.q_heads, q0.kv_heads, static_cast<int>(s.layers.size())))
    return "hidden size " + std::to_string(H) + ", intermediate " + std::to_string(I) + ", " +
           std::to_string(q0.q_heads) + "/" + std::to_string(q0.kv_heads) + " heads, " +
           std::to_string(s.layers.size()) + " layers";
  const int depth = stack_ring_depth(options_, first->group, H, I, q0.q_heads, q0.kv_heads);
  if (const char* e = cuda::stack_tuning_error(
          depth, options_.decode_stack_row_ring, options_.decode_stack_rows_in_flight,
          options_.decode_stack_window_rows_in_flight, options_.decode_stack_warp0_streams,
          options_.decode_stack_flags, options_.decode_stack_cta_attention, options_.decode_stack_warp_merge))
    return std::string(e) + ": ring depth " + std::to_string(depth) + ", rows in flight " +
           std::to_string(options_.decode_stack_rows_in_flight) + " / " +
           std::to_string(options_.decode_stack_window_rows_in_flight);
  const bool cta = options_.decode_stack_cta_attention;
  if (cta && q0.q_heads / q0.kv_heads > cuda::kStackCtaMaxGroup)
    return std::to_string(q0.q_heads / q0.kv_heads) + " q heads a kv head for the CTA attention (it takes " +
           std::to_string(cuda::kStackCtaMaxGroup) + ")";
  if (cta && !cuda::stack_cta_attention_fits(first->group))
    return "the CTA attention with Linears of " + std::to_string(first->group) + "-column groups (their form has " +
           std::to_string(cuda::stack_cta_warps(first->group, false)) + " warps a CTA; it runs up to " +
           std::to_string(cuda::kStackMaxSplits) + " key splits, one a warp)";
  const size_t smem =
      cuda::stack_smem_bytes(H, I, q0.q_heads, q0.kv_heads, first->group, depth,
                             stack_stream_warps(options_, first->group), cta,
                             cuda::stack_warp_scratch_bytes(options_.decode_stack_flags,
                                                            options_.decode_stack_warp_merge));
  if (smem > cuda::kStackSmemLimit)
    return "a ring of " + std::to_string(depth) + " units needs " + std::to_string(smem) +
           " bytes of shared memory a CTA";
  return "";
}

void CudaBackend::prepare_decode_stack(const DecodeStack& s) {
  KR_CHECK_MSG(mode_ == Mode::kEager, "prepare_decode_stack inside a step graph");
  if (!options_.decode_stack_kernel) return;
  if (const std::string why = decode_stack_refusal(s); !why.empty()) {
    KR_LOG(kWarn, "decode stack kernel: not used for this model (%s); its steps run the kernels a layer", why.c_str());
    return;
  }
  const DecodeLayer& d0 = s.layers[0];
  const int64_t H = qweight(*d0.o).w.N, I = qweight(*d0.down).w.K;
  const size_t sum_floats = cuda::stack_sum_floats(static_cast<int>(H), static_cast<int>(I),
                                                   d0.qkv_params->q_heads, d0.qkv_params->kv_heads);
  const size_t partial_floats =
      static_cast<size_t>(qweight(*d0.o).w.K) / cuda::kStackHeadDim * cuda::kStackMaxSplits * cuda::kStackPartFloats;
  // The cluster MLP form where asked for and the model, grid and device take it.
  const int group = qweight(*d0.o).w.group;
  bool cluster = false;
  if (options_.decode_stack_cluster_mlp) {
    const int depth = stack_ring_depth(options_, group, static_cast<int>(H), static_cast<int>(I),
                                       d0.qkv_params->q_heads, d0.qkv_params->kv_heads);
    // (On by default: where it does not apply, the log says so and the grid barrier form runs.)
    if (options_.decode_stack_row_ring || options_.decode_stack_flags) {
      KR_LOG(kInfo, "decode stack kernel: the cluster MLP form is not used with the row ring or the flags form");
    } else if (!cuda::stack_cluster_mlp_fits(static_cast<int>(H), static_cast<int>(I), group, num_sms_)) {
      KR_LOG(kInfo, "decode stack kernel: the cluster MLP form does not take intermediate size %lld on %d CTAs",
             static_cast<long long>(I), num_sms_);
    } else if (!cuda::stack_cluster_mlp_resident(static_cast<int>(H), static_cast<int>(I), d0.qkv_params->q_heads,
                                                 d0.qkv_params->kv_heads, group, qweight(*d0.o).w.has_bias, depth,
                                                 num_sms_)) {
      KR_LOG(kWarn, "decode stack kernel: the cluster MLP form's %d clusters of two do not fit the device at once",
             num_sms_ / 2);
    } else {
      cluster = true;
    }
  }
  auto image_bytes_of = [&](const DecodeLayer& d, const LinearWeight* w) {
    const bool mlp = w == d.gate_up || w == d.down;
    return cluster && mlp ? cuda::stack_cluster_image_bytes(qweight(*w).w, w == d.gate_up, num_sms_,
                                                            stack_stream_warps(options_, group))
                          : cuda::stack_image_bytes(qweight(*w).w);
  };
  // What the images and scratch take, checked before any of it is allocated (the KV
  // cache gets what they leave).
  size_t image_bytes = 0;
  for (const DecodeLayer& d : s.layers)
    for (const LinearWeight* w : {d.qkv, d.o, d.gate_up, d.down})
      if (qweight(*w).stack.image == nullptr) image_bytes += image_bytes_of(d, w);
  const size_t bytes =
      image_bytes + (sum_floats + partial_floats) * sizeof(float) + cuda::kStackBarrierInts * sizeof(int);
  if (bytes >= kv_cache_budget_bytes()) {
    KR_LOG(kWarn,
           "decode stack kernel: not used: its weight images (%.2f GB) do not fit in the %.2f GB left for the "
           "KV cache",
           static_cast<double>(bytes) / 1e9, static_cast<double>(kv_cache_budget_bytes()) / 1e9);
    return;
  }
  auto device_alloc = [&](size_t n) {
    void* p = nullptr;
    KR_CUDA_CHECK(cudaMalloc(&p, n));
    allocations_.emplace(p, n);
    allocated_bytes_ += n;
    return p;
  };
  // One arena, the images in the order the kernel reads them.
  if (image_bytes > 0) {
    uint8_t* arena = static_cast<uint8_t*>(device_alloc(image_bytes));
    for (const DecodeLayer& d : s.layers) {
      for (const LinearWeight* w : {d.qkv, d.o, d.gate_up, d.down}) {
        auto& q = const_cast<CudaQuantWeight&>(qweight(*w));  // the backend owns it (owned_quant_)
        if (q.stack.image != nullptr) continue;
        // o_proj's and down_proj's units in blocks of columns with local staging (a CTA stages
        // only its units' columns of their input); the others pair-major (0).
        // In the cluster MLP form, gate_up pair-major and down_proj by slices, in its order.
        const bool local = options_.decode_stack_local_staging;
        const bool in_cluster = cluster && (w == d.gate_up || w == d.down);
        const int group_block = in_cluster && w == d.down ? cuda::stack_cluster_down_group_block(q.w.group)
                                : in_cluster              ? 0
                                : local && w == d.o       ? cuda::stack_o_group_block(q.w.groups, q.w.group)
                                : local && w == d.down    ? cuda::stack_down_group_block(q.w.groups, q.w.group)
                                                          : 0;
        q.stack = cuda::build_stack_image(q.w, w == d.gate_up, num_sms_, stack_stream_warps(options_, q.w.group),
                                          group_block, arena, stream_, in_cluster);
        arena += image_bytes_of(d, w);
      }
    }
  }
  if (sum_floats > stack_sums_floats_) {  // a smaller buffer stays allocated (a graph may use it)
    stack_sums_ = static_cast<float*>(device_alloc(sum_floats * sizeof(float)));
    KR_CUDA_CHECK(cudaMemsetAsync(stack_sums_, 0, sum_floats * sizeof(float), stream_));
    stack_sums_floats_ = sum_floats;
  }
  if (partial_floats > stack_partial_floats_) {
    stack_partials_ = static_cast<float*>(device_alloc(partial_floats * sizeof(float)));
    stack_partial_floats_ = partial_floats;
  }
  if (stack_barrier_ == nullptr) {
    stack_barrier_ = static_cast<int*>(device_alloc(cuda::kStackBarrierInts * sizeof(int)));
    KR_CUDA_CHECK(cudaMemsetAsync(stack_barrier_, 0, cuda::kStackBarrierInts * sizeof(int), stream_));
  }
  const size_t trace_words = s.layers.size() * static_cast<size_t>(num_sms_) * cuda::kStackTracePoints;
  if (options_.decode_stack_trace && trace_words > stack_trace_words_) {
    stack_trace_ = static_cast<unsigned long long*>(device_alloc(trace_words * sizeof(uint64_t)));
    KR_CUDA_CHECK(cudaMemsetAsync(stack_trace_, 0, trace_words * sizeof(uint64_t), stream_));
    stack_trace_words_ = trace_words;
  }
  KR_CUDA_CHECK(cudaStreamSynchronize(stream_));
  KR_LOG(kInfo, "decode stack kernel: on for one-token steps over up to %d keys (%zu layers; %.2f GB of weight images%s)",
         cuda::kStackMaxKeys, s.layers.size(), static_cast<double>(bytes) / 1e9,
         cluster ? "; gate_up and down_proj in clusters of two CTAs" : "");
}

bool CudaBackend::decode_stack_args(const DecodeStack& s, cuda::DecodeStackArgs* a) const {
  if (!options_.decode_stack_kernel || s.layers.empty() || s.layers.size() > cuda::kStackMaxLayers) return false;
  // One token of one sequence (a decode step, or a one-token prefill).
  if (meta_.num_tokens != 1 || meta_.num_seqs != 1 || s.residual->dim(0) != 1) return false;
  for (const DecodeLayer& d : s.layers)
    for (const LinearWeight* w : {d.qkv, d.o, d.gate_up, d.down})
      if (!w->quantized() || qweight(*w).stack.image == nullptr) return false;  // not prepared
  if (!decode_stack_refusal(s).empty()) return false;
  const DecodeLayer& d0 = s.layers[0];
  const RmsNorm& n0 = d0.input_norm;
  a->layers = static_cast<int>(s.layers.size());
  for (size_t l = 0; l < s.layers.size(); ++l) {
    const DecodeLayer& d = s.layers[l];
    cuda::StackLayer& L = a->layer[l];
    L.qkv = qweight(*d.qkv).stack;
    L.o = qweight(*d.o).stack;
    L.gate_up = qweight(*d.gate_up).stack;
    L.down = qweight(*d.down).stack;
    L.input_norm_w = d.input_norm.w->data;
    L.mlp_norm_w = d.mlp_norm.w->data;
    L.k_cache = d.kv->k.data;
    L.v_cache = d.kv->v.data;
  }
  a->bias = qweight(*d0.o).w.has_bias;
  a->H = static_cast<int>(qweight(*d0.o).w.N);
  a->I = static_cast<int>(qweight(*d0.down).w.K);
  a->q_heads = d0.qkv_params->q_heads;
  a->kv_heads = d0.qkv_params->kv_heads;
  if (stack_sums_floats_ < cuda::stack_sum_floats(a->H, a->I, a->q_heads, a->kv_heads) ||
      stack_partial_floats_ < static_cast<size_t>(a->q_heads) * cuda::kStackMaxSplits * cuda::kStackPartFloats)
    return false;
  KR_CHECK(s.residual->dtype == DType::kBF16 && s.residual->numel() == a->H && s.normed->dtype == DType::kBF16 &&
           s.normed->numel() == a->H && s.final_norm.w->dtype == DType::kBF16 && s.final_norm.w->numel() == a->H);
  a->residual = s.residual->data;
  a->normed = s.normed->data;
  a->final_norm_w = s.final_norm.w->data;
  a->eps = n0.eps;
  a->norm_kind = norm_code(n0.kind);
  a->activation = activation_code(s.activation);
  a->scale = d0.attn_params->scale;
  a->inv_freq = d0.qkv_params->rope->inv_freq.as<float>();
  a->position = positions_dev();
  a->slot = slots_dev();
  a->block_table = meta_dev_ + off_tables_;
  a->max_blocks = meta_.max_blocks_per_seq;
  a->block_size = meta_.block_size;
  a->sums = stack_sums_;
  a->partials = stack_partials_;
  KR_CHECK(s.attn_out->dtype == DType::kBF16 && s.attn_out->numel() >= a->q_heads * cuda::kStackHeadDim);
  a->attn_out = s.attn_out->data;
  a->barrier = stack_barrier_;
  a->ring_depth = stack_ring_depth(options_, qweight(*d0.o).w.group, a->H, a->I, a->q_heads, a->kv_heads);
  a->row_ring = options_.decode_stack_row_ring;
  a->warp0_streams = options_.decode_stack_warp0_streams;
  a->cluster_mlp = qweight(*d0.gate_up).stack.cluster_order;
  a->rows_in_flight = options_.decode_stack_rows_in_flight;
  a->window_rows_in_flight = options_.decode_stack_window_rows_in_flight;
  a->stage_merge = options_.decode_stack_stage_merge;
  a->mma_keys = options_.decode_stack_mma_keys;
  a->cta_attention = options_.decode_stack_cta_attention;
  a->flags = options_.decode_stack_flags;
  a->warp_merge = options_.decode_stack_warp_merge;
  a->trace = nullptr;  // the buffer is reused (stack_args_): what is set only on a condition starts clear
  if (options_.decode_stack_trace) {
    if (stack_trace_words_ < s.layers.size() * static_cast<size_t>(num_sms_) * cuda::kStackTracePoints) return false;
    a->trace = stack_trace_;
  }
  return cuda::decode_stack_supports(*a);
}

bool CudaBackend::fuses_decode_stack(const DecodeStack& s) const {
  return decode_stack_args(s, stack_args_.get());
}

void CudaBackend::decode_stack(const DecodeStack& s) {
  cuda::DecodeStackArgs* a = stack_args_.get();
  if (!decode_stack_args(s, a)) {
    Backend::decode_stack(s);
    return;
  }
  late_signal_ = false;
  KR_CHECK(cuda::launch_decode_stack(*a, num_sms_, options_.pdl, op_stream()));
  stack_trace_layers_ = a->layers;
  stack_ring_depth_ = a->ring_depth;
  ++stack_launches_;
}

bool CudaBackend::decode_stack_trace(std::vector<uint64_t>* ns, int* layers, int* ctas) {
  if (stack_trace_ == nullptr || stack_trace_layers_ == 0) return false;
  KR_CUDA_CHECK(cudaStreamSynchronize(stream_));
  ns->resize(static_cast<size_t>(stack_trace_layers_) * num_sms_ * cuda::kStackTracePoints);
  KR_CUDA_CHECK(cudaMemcpy(ns->data(), stack_trace_, ns->size() * sizeof(uint64_t), cudaMemcpyDeviceToHost));
  *layers = stack_trace_layers_;
  *ctas = num_sms_;
  return true;
}


void CudaBackend::quant_matmul(const Tensor& x, const cuda::QWeight& q, Tensor& out, const Fp8Rows* fp8) {
  const cudaStream_t s = op_stream();
  const int T = static_cast<int>(x.dim(0)), N = q.N, K = q.K;
  KR_CHECK(x.dim(1) == K && out.dim(0) == T && out.dim(1) == N);
  if (T == 0) return;
  const bool out_f32 = out.dtype == DType::kF32;
  int done = 0;  // rows finished
  if (q.w8a8 && !out_f32 && T >= options_.fp8_w8a8_min_tokens) {
    // W8A8 in chunks of kActRows rows: on the FP8 rows the op before wrote (Fp8Rows;
    // bit for bit what the quantize kernel gives), else each chunk quantized here
    // (per token or static), then cuBLASLt. The same chunks either way, so that
    // cuBLASLt runs the same shapes and gives the same bits.
    if (fp8 != nullptr) KR_CHECK(fp8->rows == T && fp8->codes.dim(1) == K);
    for (; done < T; done += kActRows) {
      const int n = std::min(kActRows, T - done);
      const void* xq = q_fp8_x_;
      const float* sx = q_fp8_sx_;
      if (fp8 != nullptr) {
        xq = fp8->codes.rows(done, n).data;
        sx = fp8->scales.as<float>() + done;
      } else {
        cuda::launch_quantize_fp8_rows(x.rows(done, n).data, n, K, q.static_input, q.input_scale, q.act_scale_ub,
                                       q_fp8_x_, q_fp8_sx_, s);
      }
      if (!fp8_gemm(q, xq, sx, n, out.rows(done, n).data, s)) {
        static bool logged = false;
        if (!logged) KR_LOG(kWarn, "cuBLASLt offers no FP8 GEMM with per-row scales here; FP8 weights run W8A16");
        logged = true;
        break;
      }
    }
    if (done >= T) return;
  }
  const int rest = T - done;
  Tensor xr = x.rows(done, rest), outr = out.rows(done, rest);
  if (rest >= dense_min_tokens(q) || rest > kActRows) {
    // Prefill: dequantize once into bf16 [N, K] (input-column order) and run cuBLAS.
    cuda::launch_qdequant_dense(q, q_dense_, s);
    const float alpha = 1.0f, beta = 0.0f;
    KR_CUDA_CHECK(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, N, rest, K, &alpha, q_dense_, CUDA_R_16BF, K,
                               xr.data, CUDA_R_16BF, K, &beta, outr.data, out_f32 ? CUDA_R_32F : CUDA_R_16BF, N,
                               CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return;
  }
  KR_CHECK(quant_kernel(MatmulInput(xr), q, outr, cuda::QEpilogue::kPlain, cuda::QGemmArgs{}));
}

cuda::Fp8SmallGemmArgs CudaBackend::fp8_gemm_args(const cuda::QWeight& q, const void* xq, const float* sx, int T,
                                                  void* out) const {
  cuda::Fp8SmallGemmArgs a;
  a.wq = q.codes;
  a.N = q.N;
  a.K = q.K;
  a.ld_w = q.Kp;
  a.sw = q.row_scale;
  a.xq = xq;
  a.sx = sx;
  a.T = T;
  a.out = out;
  a.partials = q_partials_;
  a.partial_floats = kQPartialFloats;
  a.counters = q_counters_;
  a.counter_count = kQCounters;
  a.num_sms = num_sms_;
  a.pdl = options_.pdl;
  a.force_split = options_.fp8_small_gemm_split;
  return a;
}

bool CudaBackend::fp8_gemm(const cuda::QWeight& q, const void* xq, const float* sx, int T, void* out,
                           cudaStream_t s) {
  const bool small = T <= options_.fp8_small_gemm_max_tokens;
  if (small || T <= options_.fp8_wgmma_gemm_max_tokens) {
    const cuda::Fp8SmallGemmArgs a = fp8_gemm_args(q, xq, sx, T, out);
    if (small ? cuda::launch_fp8_small_gemm(a, s) : cuda::launch_fp8_wgmma_gemm(a, s)) return true;
  }
  return fp8_gemm_->run(q.codes, q.N, q.K, q.Kp, q.row_scale, xq, sx, T, out, s);
}

bool CudaBackend::fp8_qkv_rope(const Tensor& x, const cuda::QWeight& q, Tensor& qkv, const Fp8Rows* fp8,
                               const QkvParams& p, KvLayer& kv) {
  const int T = static_cast<int>(x.dim(0)), K = q.K;
  if (!options_.fp8_qkv_rope_epilogue || !q.w8a8 || T < options_.fp8_w8a8_min_tokens ||
      T <= options_.fp8_small_gemm_max_tokens || T > std::min(options_.fp8_wgmma_gemm_max_tokens, cuda::kFp8WgmmaMaxTokens) ||
      p.head_dim() != cuda::kFp8QkvRopeHeadDim || p.q_norm.present() || x.dim(1) != K)
    return false;
  if (fp8 != nullptr) KR_CHECK(fp8->rows == T && fp8->codes.dim(1) == K);
  const void* xq = fp8 != nullptr ? fp8->codes.data : q_fp8_x_;
  const float* sx = fp8 != nullptr ? fp8->scales.as<float>() : q_fp8_sx_;
  const cuda::Fp8SmallGemmArgs a = fp8_gemm_args(q, xq, sx, T, qkv.data);
  cuda::Fp8QkvRope r;
  r.cos_sin = rope_cos_sin_;
  if (p.bias != nullptr) r.bias = p.bias->data;
  r.slots = slots_dev();
  r.k_cache = kv.k.data;
  r.v_cache = kv.v.data;
  r.kv_fp8 = kv.fp8();
  r.k_scale = kv.k_scale;
  r.v_scale = kv.v_scale;
  r.q_heads = p.q_heads;
  r.kv_heads = p.kv_heads;
  if (!cuda::fp8_wgmma_gemm_takes(a, &r)) return false;
  const cudaStream_t s = op_stream();
  if (fp8 == nullptr)
    cuda::launch_quantize_fp8_rows(x.data, T, K, q.static_input, q.input_scale, q.act_scale_ub, q_fp8_x_, q_fp8_sx_, s);
  // This step's (cos, sin) for this rope, once a step (a replayed graph holds the
  // kernel where its first step issued it).
  const void* freq = p.rope->inv_freq.data;
  if (rope_table_serial_ != step_serial_ || rope_table_freq_ != freq) {
    cuda::launch_rope_table(positions_dev(), p.rope->inv_freq.as<float>(), T, cuda::kFp8QkvRopeHeadDim / 2,
                            rope_cos_sin_, s);
    rope_table_serial_ = step_serial_;
    rope_table_freq_ = freq;
  }
  KR_CHECK(cuda::launch_fp8_wgmma_gemm(a, s, &r));
  return true;
}

bool CudaBackend::quant_kernel(const MatmulInput& in, const cuda::QWeight& q, Tensor& out, cuda::QEpilogue e,
                               cuda::QGemmArgs a) {
  const cudaStream_t s = op_stream();
  const int T = static_cast<int>(in.x->dim(0));
  a.T = T;
  a.out = out.data;
  a.out_f32 = out.dtype == DType::kF32;
  a.partials = q_partials_;
  a.partial_floats = kQPartialFloats;
  a.counters = q_counters_;
  a.counter_count = kQCounters;
  late_signal_ = false;
  const bool fused_norm = in.norm.present() && T <= cuda::kQGemvMaxTokens && q.perm == nullptr;
  if (fused_norm) {
    a.norm_w = in.norm.w->data;
    a.eps = in.norm.eps;
    a.norm_kind = norm_code(in.norm.kind);
    a.normed = in.normed->data;
  }
  if (T > kActRows || !cuda::qgemm_supports(q, a, e)) return false;
  const Tensor* x = in.x;
  if (in.norm.present() && !fused_norm) {
    rms_norm(*in.x, in.norm, *in.normed);
    x = in.normed;
  }
  a.x = x->data;
  if (q.perm != nullptr) {  // act-order: the activations in the weight's canonical column order
    cuda::launch_gather_cols(x->data, q.perm, q_gather_, T, q.K, s);
    a.x = q_gather_;
  }
  cuda::QGemvPath gemv_path = cuda::QGemvPath::kMma;
  switch (options_.quant_gemv) {
    case CudaOptions::QuantGemv::kAuto:
      gemv_path = q.code == cuda::QCode::kFp8 ? cuda::QGemvPath::kRowTc : cuda::QGemvPath::kStream;
      break;
    case CudaOptions::QuantGemv::kMma: gemv_path = cuda::QGemvPath::kMma; break;
    case CudaOptions::QuantGemv::kStream: gemv_path = cuda::QGemvPath::kStream; break;
    case CudaOptions::QuantGemv::kRow: gemv_path = cuda::QGemvPath::kRow; break;
    case CudaOptions::QuantGemv::kRowTc: gemv_path = cuda::QGemvPath::kRowTc; break;
  }
  cuda::QGemmPath batched_path = cuda::QGemmPath::kV1;
  switch (options_.quant_gemm) {
    case CudaOptions::QuantGemm::kV1: batched_path = cuda::QGemmPath::kV1; break;
    case CudaOptions::QuantGemm::kV2: batched_path = cuda::QGemmPath::kV2; break;
    case CudaOptions::QuantGemm::kWgmma: batched_path = cuda::QGemmPath::kWgmma; break;
  }
  return cuda::launch_qgemm(q, a, e, num_sms_, options_.pdl, s, gemv_path, options_.quant_gemv_split, batched_path,
                            &late_signal_);
}

void CudaBackend::matmul_add_rms_norm(const MatmulInput& in, const LinearWeight& w, Tensor& out,
                                      const RmsNorm& out_norm, Tensor& residual, const RmsNorm& norm, Tensor& normed,
                                      Fp8Out normed_fp8) {
  const cudaStream_t s = op_stream();
  KR_CHECK_MSG(!in.norm.present(), "matmul_add_rms_norm: an input with a norm prologue");
  const Fp8Rows* fp8 = nullptr;
  Fp8Rows unused;
  const Tensor& x = input_rows(in, w, &fp8, &unused);
  if (fp8 != nullptr) {  // x's FP8 rows from the op before: the W8A8 GEMM without a quantize kernel
    KR_CHECK(x.dtype == DType::kBF16 && w.cols() == x.dim(1) && out.dim(0) == x.dim(0) && out.dim(1) == w.rows() &&
             out.dtype == DType::kBF16);
    quant_matmul(x, qweight(w).w, out, fp8);
  } else {
    matmul(x, w, out);
  }
  check_norm(out, norm, normed);
  KR_CHECK(residual.numel() == out.numel() && residual.dtype == DType::kBF16);
  // One norm kernel: out's own norm (Gemma), the residual add, the next norm, and
  // (normed_fp8) normed's FP8 rows for the W8A8 matmul that reads normed next.
  cuda::RmsNormArgs a = norm_args(residual.data, out, norm, normed);
  fp8_target(normed_fp8, normed, &a.q);
  if (out_norm.present()) {
    check_norm(out, out_norm, out);
    KR_CHECK(out_norm.kind == norm.kind && out_norm.eps == norm.eps);
    a.pre_w = out_norm.w->data;
    a.x_normed = out.data;
  }
  // PDL after a batch-1 GEMV, or after a GEMM that signals its dependents late.
  const bool after_late_signal = take_late_signal() && norm.kind == NormKind::kTimesWeight;
  cuda::launch_rms_norm(a, pdl_norm(out, norm) || after_late_signal, s);
}

void CudaBackend::attention(const Tensor& qkv, const KvLayer& kv, const AttentionParams& p, Tensor& out,
                            Fp8Out out_fp8) {
  const cudaStream_t s = op_stream();
  const bool after_late_signal = take_late_signal();  // qkv_rope_store's GEMM signals late
  const int q_heads = p.q_heads, kv_heads = p.kv_heads, head_dim = p.head_dim;
  KR_CHECK(q_heads > 0 && kv_heads > 0 && q_heads % kv_heads == 0 && q_heads / kv_heads <= 64);
  KR_CHECK(p.sliding_window >= 0 && p.softcap >= 0.0f);
  KR_CHECK(qkv.dim(0) == meta_.num_tokens && out.dim(0) == meta_.num_tokens);
  KR_CHECK(qkv.dim(1) == int64_t{q_heads + 2 * kv_heads} * head_dim && out.dim(1) == int64_t{q_heads} * head_dim);
  KR_CHECK_MSG(head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128 || head_dim == 256,
               "attention: unsupported head_dim");
  check_kv(kv, kv_heads, head_dim);
  const int group = q_heads / kv_heads;
  // The tensor-core kernels for head dims 64/128/256; the old kernel for the rest (16, 32).
  const bool short_decode = decode_only_ && meta_.num_seqs <= cuda::kGemvMaxTokens &&
                            meta_.max_blocks_per_seq * meta_.block_size < options_.flash_decode_min_keys;
  const bool flash = options_.flash_attention && !short_decode &&
                     cuda::flash_attention_supported(q_heads, kv_heads, head_dim, meta_.block_size) &&
                     cuda::flash_prefill_tile_tokens(group, head_dim) > 0;
  // Short decode steps on the cluster kernel: decode tiles (one per sequence) as
  // set_step_metadata built them.
  const bool cluster_decode = short_decode &&
                              options_.short_decode_attention == CudaOptions::ShortDecodeAttention::kCluster &&
                              cuda::decode_attention_supported(q_heads, kv_heads, head_dim);
  const int key = tile_key(flash, group, head_dim);
  if (tile_key_ != kDecodeTiles && tile_key_ != key) build_tiles(key, flash, group, head_dim);
  // out's FP8 rows for o_proj (Fp8Rows): by the flash decode kernel where it can
  // write them, else quantized right after the kernel that wrote out.
  cuda::Fp8RowsOut q;
  bool fp8 = false;
  if (options_.fp8_attention_out) {
    fp8 = fp8_target(out_fp8, out, &q);
  } else if (out_fp8.rows != nullptr) {
    out_fp8.rows->clear();
  }
  auto quantize_out = [&] {
    if (fp8)
      cuda::launch_quantize_fp8_rows(out.data, static_cast<int>(out.dim(0)), static_cast<int>(out.dim(1)),
                                     q.static_input, q.input_scale, q.act_scale_ub, q.codes, q.scales, s);
  };
  if (flash) {
    if (!flash_attention(qkv, kv, p, group, out, fp8 ? &q : nullptr, after_late_signal)) quantize_out();
    return;
  }
  cuda::AttnArgs a{};
  a.qkv = qkv.data;
  a.k_cache = kv.k.data;
  a.v_cache = kv.v.data;
  a.out = out.data;
  a.positions = meta_dev_ + off_positions_;
  a.context_lens = meta_dev_ + off_ctx_;
  a.block_tables = meta_dev_ + off_tables_;
  a.tiles = reinterpret_cast<const cuda::AttnTile*>(meta_dev_ + off_tiles_);
  a.num_tiles = num_tiles_;
  a.decode_only = decode_only_;
  a.max_blocks = meta_.max_blocks_per_seq;
  a.block_size = meta_.block_size;
  a.q_heads = q_heads;
  a.kv_heads = kv_heads;
  a.head_dim = head_dim;
  a.scale = p.scale;
  a.window = p.sliding_window;
  a.softcap = p.softcap;
  if (kv.fp8()) {  // K's scale into the scores' scale, V's onto the output rows
    a.kv_fp8 = true;
    a.scale = p.scale * kv.k_scale;
    a.v_scale = kv.v_scale;
  }
  if (cluster_decode) {
    KR_CHECK(tile_key_ == kDecodeTiles);
    cuda::launch_decode_attention(a, options_.pdl && options_.pdl_short_decode, s);
    quantize_out();
    return;
  }
  // Split the keys (decode) when there are too few tiles to fill the GPU. The split
  // depends only on shapes (tiles, block-table width), never on the context
  // lengths, so a recorded step graph stays valid for every step of its key.
  const int kv_keys = meta_.max_blocks_per_seq * meta_.block_size;
  const int rows = cuda::attn_tile_tokens(group) * group;
  a.num_splits = 1;
  a.split_keys = kv_keys;
  if (decode_only_ && num_tiles_ > 0 && num_tiles_ * kv_heads <= cuda::attn_max_split_groups()) {
    // At least one key tile (32 keys) per split.
    int splits = (kTargetBlocks + num_tiles_ * kv_heads - 1) / (num_tiles_ * kv_heads);
    splits = std::max(1, std::min({splits, (kv_keys + 31) / 32, cuda::attn_max_splits()}));
    a.split_keys = static_cast<int>(align_up((kv_keys + splits - 1) / splits, 32));
    a.num_splits = (kv_keys + a.split_keys - 1) / a.split_keys;
    // Partials: [tiles * kv_heads * rows, splits, D + 2] floats must fit the scratch.
    if (static_cast<size_t>(num_tiles_) * kv_heads * rows * a.num_splits * (head_dim + 2) * sizeof(float) >
        kAttnScratchBytes) {
      a.num_splits = 1;
      a.split_keys = kv_keys;
    }
  }
  const size_t partial_rows = static_cast<size_t>(num_tiles_) * kv_heads * rows * a.num_splits;
  a.partial_out = static_cast<float*>(attn_scratch_);
  a.partial_ml = a.partial_out + partial_rows * head_dim;
  cuda::launch_paged_attention(a, s);
  quantize_out();
}

// Flash attention of the step's tiles: the prefill kernel over the prefill tiles,
// then the decode kernel over the decode tiles (tiles_dev = [prefill | decode]).
// Each kernel gets half of the split scratch. Split counts come from shapes only:
// on a decode-only step (the steps a graph records) from the tile count and the
// block-table width, so a recorded graph stays valid for every step of its key;
// elsewhere from the largest context of the tiles' sequences. The split arrival
// counters reset themselves, so replays start from zeros. With q (out's FP8 rows
// wanted): the decode kernel writes them when it alone covers every token of the
// step (decode tiles only, one token each, at most kFlashMaxFp8Tiles); returns
// whether it did (false: the caller quantizes out).
bool CudaBackend::flash_attention(const Tensor& qkv, const KvLayer& kv, const AttentionParams& p, int group,
                                  Tensor& out, const cuda::Fp8RowsOut* q, bool pdl_decode) {
  const cudaStream_t s = op_stream();
  const int kv_heads = p.kv_heads, head_dim = p.head_dim;
  int n_prefill = num_prefill_tiles_, prefill_keys = prefill_max_keys_, decode_keys = decode_max_keys_;
  if (tile_key_ == kDecodeTiles) {
    // One token per tile: decode tiles, or prefill tiles when the group exceeds a decode tile.
    n_prefill = cuda::flash_decode_tile_tokens(group) > 0 ? 0 : num_tiles_;
    prefill_keys = decode_keys = meta_.max_blocks_per_seq * meta_.block_size;
  }
  const int n_decode = num_tiles_ - n_prefill;
  cuda::FlashAttnArgs a;
  a.qkv = qkv.data;
  a.k_cache = kv.k.data;
  a.v_cache = kv.v.data;
  a.out = out.data;
  a.positions = meta_dev_ + off_positions_;
  a.context_lens = meta_dev_ + off_ctx_;
  a.block_tables = meta_dev_ + off_tables_;
  a.max_blocks = meta_.max_blocks_per_seq;
  a.num_blocks = static_cast<int>(kv.k.numel() / (int64_t{meta_.block_size} * kv_heads * head_dim));
  a.block_size = meta_.block_size;
  a.q_heads = p.q_heads;
  a.kv_heads = kv_heads;
  a.head_dim = head_dim;
  a.scale = p.scale;
  a.window = p.sliding_window;
  a.softcap = p.softcap;
  if (kv.fp8()) {  // K's scale into the scores' scale, V's onto the output rows
    a.kv_fp8 = true;
    a.scale = p.scale * kv.k_scale;
    a.v_scale = kv.v_scale;
  }
  const auto* tiles = reinterpret_cast<const cuda::AttnTile*>(meta_dev_ + off_tiles_);
  constexpr size_t kHalf = kAttnScratchBytes / 2;
  auto set_split = [&](const cuda::FlashSplit& sp, int num_tiles, int rows_cap, char* ws) {
    a.num_splits = sp.num_splits;
    a.split_keys = sp.split_keys;
    a.decode_warps = sp.decode_warps;
    a.partial_out = nullptr;
    a.partial_ml = nullptr;
    if (sp.num_splits > 1) {
      KR_CHECK(cuda::flash_workspace_bytes(num_tiles, kv_heads, rows_cap, sp.num_splits, head_dim) <= kHalf);
      a.partial_out = reinterpret_cast<float*>(ws);
      a.partial_ml = a.partial_out + static_cast<size_t>(num_tiles) * kv_heads * rows_cap * sp.num_splits * head_dim;
    }
  };
  if (n_prefill > 0) {
    a.tiles = tiles;
    a.num_tiles = n_prefill;
    const int variant =
        cuda::flash_prefill_variant_for(prefill_keys, options_.flash_prefill_variant,
                                        options_.flash_prefill_short_variant, options_.flash_prefill_short_max_keys);
    set_split(cuda::flash_prefill_split(n_prefill, kv_heads, head_dim, prefill_keys, kHalf, variant), n_prefill,
              cuda::flash_prefill_rows(head_dim), static_cast<char*>(attn_scratch_));
    KR_CHECK_MSG(cuda::launch_flash_prefill(a, s, variant),
                 "attention: the flash prefill kernel refused its arguments");
  }
  if (n_decode > 0) {
    a.tiles = tiles + n_prefill;
    a.num_tiles = n_decode;
    set_split(cuda::flash_decode_split(n_decode, kv_heads, head_dim, decode_keys, kHalf, a.kv_fp8,
                                       options_.flash_decode_warps), n_decode,
              cuda::kFlashDecodeRows, static_cast<char*>(attn_scratch_) + kHalf);
    const bool fp8_tail = q != nullptr && n_prefill == 0 && n_decode == meta_.num_tokens &&
                          n_decode <= cuda::kFlashMaxFp8Tiles;
    if (fp8_tail) a.out_fp8 = *q;
    a.pdl = (pdl_decode || (options_.pdl && options_.pdl_flash_decode)) && n_prefill == 0;
    KR_CHECK_MSG(cuda::launch_flash_decode(a, s), "attention: the flash decode kernel refused its arguments");
    return fp8_tail;
  }
  return false;
}

// Leads from the device's shape: dense bf16 tensor-core FLOPs per SM and clock
// (Hopper 4096, Ampere/Ada 2048); of that, 45% for a layer's matmuls with their
// norm, rope and activation kernels (pp512 ran at 43k tok/s on the H200, about
// a quarter of peak, before the flash kernels) and 30% for the mma.sync flash
// prefill: on the low side, so that a cold server's first mixed steps stay
// short until the engine's online correction has seen some; 80% of the HBM peak
// (the H200: 3.9 of 4.8 TB/s); about 1 ms of launches and host work per step
// that is not a graph replay.
BackendRates CudaBackend::rates() const {
  int sms = 0, clock_khz = 0, mem_khz = 0, bus_bits = 0, major = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, options_.device);
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, options_.device);
  cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, options_.device);
  cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, options_.device);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, options_.device);
  BackendRates r;
  const double per_sm_clock = major >= 9 ? 4096.0 : major >= 8 ? 2048.0 : 1024.0;
  const double peak = static_cast<double>(sms) * clock_khz * 1e3 * per_sm_clock;
  r.matmul_flop_s = 0.45 * peak;
  r.attention_flop_s = 0.30 * peak;
  // Double data rate: two transfers per memory clock.
  r.memory_byte_s = 0.8 * 2.0 * mem_khz * 1e3 * bus_bits / 8.0;
  r.step_overhead_s = 1e-3;
  r.attention_tile_rows = 128;  // flash prefill tile rows at head dims 64/128 (cuda_flash_attention.h)
  return r;
}

bool CudaBackend::begin_graph(uint64_t key) {
  KR_CHECK_MSG(mode_ == Mode::kEager, "begin_graph twice");
  // This half's last replay (two steps ago) may still read its pinned staging.
  half_ ^= 1;
  KR_CUDA_CHECK(cudaEventSynchronize(graph_done_[half_]));
  graph_key_ = key;
  staging_used_ = 0;
  staged_copies_ = 0;
  rope_table_freq_ = nullptr;  // a recorded graph holds its own table fill (fp8_qkv_rope)
  auto it = graphs_.find(key);
  if (it != graphs_.end() && it->second.exec[half_] != nullptr) {
    mode_ = Mode::kReplay;
    return true;
  }
  graphs_[key].copy_bytes.clear();
  KR_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed));
  mode_ = Mode::kCapture;
  return true;
}

void CudaBackend::retarget_staged_copies(cudaGraph_t graph, int from, size_t expected_copies) {
  size_t n = 0;
  KR_CUDA_CHECK(cudaGraphGetNodes(graph, nullptr, &n));
  std::vector<cudaGraphNode_t> nodes(n);
  KR_CUDA_CHECK(cudaGraphGetNodes(graph, nodes.data(), &n));
  const char* const lo = staging_[from];
  size_t moved = 0;
  for (cudaGraphNode_t node : nodes) {
    cudaGraphNodeType type;
    KR_CUDA_CHECK(cudaGraphNodeGetType(node, &type));
    if (type != cudaGraphNodeTypeMemcpy) continue;
    cudaMemcpy3DParms p = {};
    KR_CUDA_CHECK(cudaGraphMemcpyNodeGetParams(node, &p));
    const char* src = static_cast<const char*>(p.srcPtr.ptr);
    if (src < lo || src >= lo + kStagingBytes) continue;
    p.srcPtr.ptr = staging_[from ^ 1] + (src - lo);
    KR_CUDA_CHECK(cudaGraphMemcpyNodeSetParams(node, &p));
    ++moved;
  }
  KR_CHECK_MSG(moved == expected_copies, "step graph: not every staged copy was found in the recording");
}

void CudaBackend::end_graph() {
  Graph& g = graphs_[graph_key_];
  if (mode_ == Mode::kCapture) {
    cudaGraph_t graph = nullptr;
    KR_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    KR_CUDA_CHECK(cudaGraphInstantiate(&g.exec[half_], graph, 0));
    retarget_staged_copies(graph, half_, g.copy_bytes.size());
    KR_CUDA_CHECK(cudaGraphInstantiate(&g.exec[half_ ^ 1], graph, 0));
    KR_CUDA_CHECK(cudaGraphDestroy(graph));
  } else {
    KR_CHECK_MSG(mode_ == Mode::kReplay, "end_graph without begin_graph");
    KR_CHECK_MSG(staged_copies_ == g.copy_bytes.size(), "step graph replay: fewer copies than recorded");
  }
  mode_ = Mode::kEager;
  KR_CUDA_CHECK(cudaGraphLaunch(g.exec[half_], stream_));
  KR_CUDA_CHECK(cudaEventRecord(graph_done_[half_], stream_));
}

}  // namespace

bool cuda_decode_stack_trace(Backend& b, std::vector<uint64_t>* ns, int* layers, int* ctas) {
  auto* cb = dynamic_cast<CudaBackend*>(&b);
  return cb != nullptr && cb->decode_stack_trace(ns, layers, ctas);
}

int64_t cuda_decode_stack_launches(Backend& b) {
  auto* cb = dynamic_cast<CudaBackend*>(&b);
  return cb != nullptr ? cb->decode_stack_launches() : -1;
}

int cuda_decode_stack_ring_depth(Backend& b) {
  auto* cb = dynamic_cast<CudaBackend*>(&b);
  return cb != nullptr ? cb->decode_stack_ring_depth() : 0;
}

bool cuda_device_available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

bool cuda_device_memory(int device, size_t* free_bytes, size_t* total_bytes) {
  if (!cuda_device_available() || cudaSetDevice(device) != cudaSuccess) return false;
  return cudaMemGetInfo(free_bytes, total_bytes) == cudaSuccess;
}

std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options) {
  if (!cuda_device_available()) return nullptr;
  return std::make_unique<CudaBackend>(options);
}

}  // namespace kr
