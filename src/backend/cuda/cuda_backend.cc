// CudaBackend: the Backend ops on one GPU. Everything is enqueued on one stream;
// host<->device copies are the only synchronisation points.
#include "backend/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backend/cuda/cuda_gemv1.h"
#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/cuda_sampling.h"
#include "base/check.h"
#include "base/log.h"

namespace kr {
namespace {

#define KR_CUDA_CHECK(expr)                                                       \
  do {                                                                            \
    const cudaError_t kr_err_ = (expr);                                           \
    if (kr_err_ != cudaSuccess)                                                   \
      ::kr::detail::check_failed(__FILE__, __LINE__, #expr, cudaGetErrorString(kr_err_)); \
  } while (0)
#define KR_CUBLAS_CHECK(expr)                                                     \
  do {                                                                            \
    const cublasStatus_t kr_st_ = (expr);                                         \
    if (kr_st_ != CUBLAS_STATUS_SUCCESS)                                          \
      ::kr::detail::check_failed(__FILE__, __LINE__, #expr, cublasGetStatusString(kr_st_)); \
  } while (0)

constexpr size_t kStagingBytes = size_t{32} << 20;         // pinned host bytes a graph step may copy in
constexpr size_t kMetaInts = size_t{8} << 20;              // device int32 slots for step metadata
constexpr size_t kAttnScratchBytes = size_t{256} << 20;    // split-K partials
constexpr size_t kCublasWorkspaceBytes = size_t{64} << 20;
constexpr size_t kReserveBytes = size_t{1} << 30;          // left free after the KV cache: workspace, cuBLAS
constexpr int kTargetBlocks = 528;                         // 4 blocks per SM (132 SMs) for split decode

size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    KR_CUDA_CHECK(cudaSetDevice(device_));
    KR_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    KR_CUBLAS_CHECK(cublasCreate(&cublas_));
    KR_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    KR_CUDA_CHECK(cudaMalloc(&cublas_ws_, kCublasWorkspaceBytes));
    // An explicit workspace keeps cuBLAS from allocating inside a graph capture.
    KR_CUBLAS_CHECK(cublasSetWorkspace(cublas_, cublas_ws_, kCublasWorkspaceBytes));
    KR_CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
    KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&meta_dev_), kMetaInts * sizeof(int32_t)));
    KR_CUDA_CHECK(cudaMalloc(&attn_scratch_, kAttnScratchBytes));
    KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&inv_freq_dev_), 512 * sizeof(float)));
    KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&sample_ids_dev_), 4096 * sizeof(int32_t)));
    KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&sample_lp_dev_), 4096 * sizeof(float)));
    sampler_ = std::make_unique<cuda::CudaSampler>();  // its device and pinned buffers (grown on demand)
    KR_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&staging_), kStagingBytes, cudaHostAllocDefault));
    KR_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&inv_freq_pinned_), 512 * sizeof(float), cudaHostAllocDefault));
    KR_CUDA_CHECK(cudaEventCreateWithFlags(&graph_done_, cudaEventDisableTiming));
    const char* f = std::getenv("KR_GPU_MEMORY_FRACTION");
    if (f != nullptr) memory_fraction_ = std::clamp(std::atof(f), 0.05, 0.99);
    if (const char* r = std::getenv("KR_GEMV_ROWS_PER_WARP")) cuda::set_gemv_rows_per_warp(std::atoi(r));
    // KR_FUSE: bit mask of the batch-1 GEMV fusions (see PendingGemv). Default 11 =
    // SwiGLU + norm + RoPE: adding the residual epilogue (15) measured 3-7% slower on
    // the H200 in four calls (it moves every add_rms_norm into a norm prologue, whose
    // per-block reduction costs more than the small kernel it replaces).
    if (const char* f = std::getenv("KR_FUSE")) fuse_ = std::atoi(f);
    if (const char* t = std::getenv("KR_GEMV1_TUNE")) cuda::set_gemv1_tune(std::atoi(t));
    if (const char* a = std::getenv("KR_ATTN_MAX_SPLITS")) attn_max_splits_ = std::max(1, std::atoi(a));
    // KR_PDL: 0 off, 1 every kernel, 2 (default) batch-1 GEMVs only.
    const char* pdl = std::getenv("KR_PDL");
    const int pdl_mode = pdl != nullptr ? std::atoi(pdl) : 2;
    cuda::set_pdl_enabled(pdl_mode == 1);
    cuda::set_pdl_gemv(pdl_mode == 2);
  }

  ~CudaBackend() override {
    flush_pending();
    cudaStreamSynchronize(stream_);
    for (auto& [key, g] : graphs_) cudaGraphExecDestroy(g.exec);
    for (void* p : allocations_) cudaFree(p);
    cudaFree(cublas_ws_);
    cudaFree(meta_dev_);
    cudaFree(attn_scratch_);
    cudaFree(inv_freq_dev_);
    cudaFree(sample_ids_dev_);
    cudaFree(sample_lp_dev_);
    sampler_.reset();
    cudaFreeHost(staging_);
    cudaFreeHost(inv_freq_pinned_);
    cudaEventDestroy(graph_done_);
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
    allocations_.insert(p);
    t.data = p;
    return t;
  }

  void free(Tensor& t) override {
    flush_pending();
    if (t.data == nullptr) return;
    if (allocations_.erase(t.data) > 0) {
      cudaStreamSynchronize(stream_);
      cudaFree(t.data);
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
    allocations_.insert(p);
    t.data = p;
    if (host.dtype == dst_type) {
      KR_CUDA_CHECK(cudaMemcpy(p, host.data, host.bytes(), cudaMemcpyHostToDevice));
    } else {
      void* tmp = nullptr;
      KR_CUDA_CHECK(cudaMalloc(&tmp, host.bytes()));
      KR_CUDA_CHECK(cudaMemcpy(tmp, host.data, host.bytes(), cudaMemcpyHostToDevice));
      cuda::launch_to_bf16(tmp, host.dtype == DType::kF16, host.dtype == DType::kF32, p, host.numel(), stream_);
      KR_CUDA_CHECK(cudaStreamSynchronize(stream_));
      cudaFree(tmp);
    }
    return t;
  }

  void copy_from_host(Tensor& dst, const void* src, size_t bytes) override {
    flush_pending();
    KR_CHECK(bytes <= dst.bytes());
    if (bytes == 0) return;
    if (mode_ == Mode::kEager) {
      KR_CUDA_CHECK(cudaMemcpyAsync(dst.data, src, bytes, cudaMemcpyHostToDevice, stream_));
      return;
    }
    staged_copy(dst.data, src, bytes);
  }

  void copy_to_host(void* dst, const Tensor& src, size_t bytes) override {
    flush_pending();
    KR_CHECK_MSG(mode_ == Mode::kEager, "copy_to_host inside a step graph");
    KR_CHECK(bytes <= src.bytes());
    KR_CUDA_CHECK(cudaMemcpyAsync(dst, src.data, bytes, cudaMemcpyDeviceToHost, stream_));
    KR_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void fill_zero(Tensor& t) override {
    if (mode_ == Mode::kReplay) return;
    flush_pending();
    KR_CUDA_CHECK(cudaMemsetAsync(t.data, 0, t.bytes(), stream_));
  }

  void synchronize() override {
    flush_pending();
    KR_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  size_t kv_cache_budget_bytes() const override {
    size_t free_bytes = 0, total_bytes = 0;
    KR_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    const size_t budget = static_cast<size_t>(static_cast<double>(free_bytes) * memory_fraction_);
    return budget > kReserveBytes ? budget - kReserveBytes : 0;
  }

  void set_step_metadata(const StepMetadata& m) override;

  void embedding(const Tensor& table, const Tensor& ids, Tensor& out) override {
    if (mode_ == Mode::kReplay) return;
    flush_pending();
    KR_CHECK(table.dtype == DType::kBF16 && out.dtype == DType::kBF16 && ids.dim(0) == out.dim(0));
    KR_CHECK(table.dim(1) == out.dim(1) && out.dim(1) % 8 == 0);
    cuda::launch_embedding(table.data, ids.as<int32_t>(), out.data, static_cast<int>(out.dim(0)),
                           static_cast<int>(out.dim(1)), stream_);
  }

  void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) override {
    if (mode_ == Mode::kReplay) return;
    flush_pending();
    check_norm(x, w, out);
    if (x.dim(0) == 1 && (fuse_ & kFuseNorm)) {
      pending_norm_ = PendingNorm{x.data, w.data, eps, out.data, static_cast<int>(x.dim(1))};
      return;
    }
    cuda::launch_rms_norm(nullptr, x.data, w.data, eps, out.data, static_cast<int>(x.dim(0)),
                          static_cast<int>(x.dim(1)), stream_);
  }

  void add_rms_norm(Tensor& residual, const Tensor& x, const Tensor& w, float eps, Tensor& out) override {
    if (mode_ == Mode::kReplay) return;
    check_norm(x, w, out);
    KR_CHECK(residual.numel() == x.numel());
    if (x.dim(0) == 1 && (fuse_ & kFuseResidual) && pending_gemv_.out == x.data && !pending_gemv_.rope &&
        x.data != residual.data && pending_gemv_.norm.x != residual.data) {
      // The GEMV that produced x adds it to the residual in its epilogue; what is
      // left is a plain rms_norm of the residual (itself fused into the next GEMV).
      cuda::Gemv1Args a = gemv_args(pending_gemv_);
      a.residual = residual.data;
      if (cuda::launch_gemv1(a, cuda::Gemv1Epilogue::kResidual, stream_)) {
        pending_gemv_ = PendingGemv{};
        rms_norm(residual, w, eps, out);
        return;
      }
    }
    flush_pending();
    cuda::launch_rms_norm(residual.data, x.data, w.data, eps, out.data, static_cast<int>(x.dim(0)),
                          static_cast<int>(x.dim(1)), stream_);
  }

  void matmul(const Tensor& x, const Tensor& w, Tensor& out) override;

  void rope(Tensor& qkv, int q_heads, int kv_heads, const RopeParams& rope) override {
    if (mode_ == Mode::kReplay) return;
    const bool into_gemv = (fuse_ & kFuseRope) && pending_gemv_.out == qkv.data && !pending_gemv_.rope;
    if (!into_gemv) flush_pending();
    const int64_t T = qkv.dim(0);
    KR_CHECK(T == meta_.num_tokens && qkv.dim(1) == (q_heads + 2 * kv_heads) * int64_t{rope.head_dim});
    KR_CHECK(static_cast<int>(rope.inv_freq.size()) == rope.head_dim / 2 && rope.head_dim <= 1024);
    if (inv_freq_host_ != rope.inv_freq) {
      // Copied from a pinned buffer that keeps these values: a step graph recorded
      // now replays the (tiny) copy from there.
      if (mode_ == Mode::kEager) KR_CUDA_CHECK(cudaStreamSynchronize(stream_));
      std::memcpy(inv_freq_pinned_, rope.inv_freq.data(), rope.inv_freq.size() * sizeof(float));
      inv_freq_host_ = rope.inv_freq;
      inv_freq_bytes_ = rope.inv_freq.size() * sizeof(float);
      KR_CUDA_CHECK(cudaMemcpyAsync(inv_freq_dev_, inv_freq_pinned_, inv_freq_bytes_, cudaMemcpyHostToDevice, stream_));
    }
    // Deferred: launched fused with the store_kv() that normally follows (into the
    // pending qkv GEMV's epilogue at batch 1), or alone by flush_pending() before
    // anything else touches the step's tensors.
    pending_rope_ = PendingRope{qkv.data, static_cast<int>(T), q_heads, kv_heads, rope.head_dim};
    pending_gemv_.rope = into_gemv;
  }

  void store_kv(const Tensor& qkv, int q_heads, int kv_heads, int head_dim, KvLayer& kv) override {
    if (mode_ == Mode::kReplay) return;
    KR_CHECK(qkv.dim(0) == meta_.num_tokens && head_dim % 8 == 0);
    KR_CHECK(kv.k.dtype == DType::kBF16 && kv.k.numel() % (int64_t{kv_heads} * head_dim) == 0);
    if (pending_rope_.qkv == qkv.data && pending_rope_.q_heads == q_heads && pending_rope_.kv_heads == kv_heads &&
        pending_rope_.head_dim == head_dim) {
      if (pending_gemv_.rope) {
        cuda::Gemv1Args a = gemv_args(pending_gemv_);
        a.positions = positions_dev();
        a.slots = slots_dev();
        a.inv_freq = inv_freq_dev_;
        a.k_cache = kv.k.data;
        a.v_cache = kv.v.data;
        a.q_heads = q_heads;
        a.kv_heads = kv_heads;
        a.head_dim = head_dim;
        if (cuda::launch_gemv1(a, cuda::Gemv1Epilogue::kRope, stream_)) {
          pending_gemv_ = PendingGemv{};
          pending_rope_ = PendingRope{};
          return;
        }
        launch_pending_gemv();  // unfused: the GEMV, then rope+store below
      }
      cuda::launch_rope(qkv.data, positions_dev(), inv_freq_dev_, pending_rope_.tokens, q_heads, kv_heads, head_dim,
                        stream_, slots_dev(), kv.k.data, kv.v.data);
      pending_rope_ = PendingRope{};
      return;
    }
    flush_pending();
    cuda::launch_store_kv(qkv.data, slots_dev(), kv.k.data, kv.v.data, static_cast<int>(qkv.dim(0)), q_heads,
                          kv_heads, head_dim, stream_);
  }

  void attention(const Tensor& qkv, const KvLayer& kv, int q_heads, int kv_heads, int head_dim, float scale,
                 Tensor& out) override;

  void silu_mul(const Tensor& gate_up, Tensor& out) override {
    if (mode_ == Mode::kReplay) return;
    const int64_t I = out.dim(1);
    KR_CHECK(gate_up.dim(0) == out.dim(0) && gate_up.dim(1) == 2 * I && I % 8 == 0);
    if ((fuse_ & kFuseSwiglu) && pending_gemv_.out == gate_up.data && pending_gemv_.N == 2 * I &&
        !pending_gemv_.rope && out.dim(0) == 1) {
      cuda::Gemv1Args a = gemv_args(pending_gemv_);
      a.act = out.data;
      if (cuda::launch_gemv1(a, cuda::Gemv1Epilogue::kSwiglu, stream_)) {
        pending_gemv_ = PendingGemv{};
        return;
      }
    }
    flush_pending();
    cuda::launch_silu_mul(gate_up.data, out.data, static_cast<int>(out.dim(0)), static_cast<int>(I), stream_);
  }

  void gather_rows(const Tensor& x, const Tensor& idx, Tensor& out) override {
    if (mode_ == Mode::kReplay) return;
    if (x.dim(0) == 1 && out.dim(0) == 1 && pending_norm_.out == x.data && pending_norm_.copy == nullptr &&
        out.dtype == x.dtype) {
      // One row from one row: idx can only be 0 (Model validates logit rows), so
      // the pending norm writes its result to `out` as well, and stays pending for the
      // lm_head GEMV that normally follows.
      pending_norm_.copy = out.data;
      return;
    }
    flush_pending();
    const int64_t row_bytes = x.bytes() / std::max<int64_t>(x.dim(0), 1);
    KR_CHECK(idx.dim(0) == out.dim(0) && out.dtype == x.dtype && row_bytes % 16 == 0);
    cuda::launch_gather_rows(x.data, idx.as<int32_t>(), out.data, static_cast<int>(out.dim(0)), row_bytes, stream_);
  }

  bool argmax_logprob(const Tensor& logits, int32_t* ids, float* logprobs) override {
    flush_pending();
    KR_CHECK_MSG(mode_ == Mode::kEager, "argmax_logprob inside a step graph");
    const int64_t R = logits.dim(0), V = logits.dim(1);
    KR_CHECK(logits.dtype == DType::kF32 && R <= 4096);
    cuda::launch_argmax_logprob(logits.as<float>(), static_cast<int>(R), static_cast<int>(V), sample_ids_dev_,
                                sample_lp_dev_, stream_);
    KR_CUDA_CHECK(cudaMemcpyAsync(ids, sample_ids_dev_, R * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
    KR_CUDA_CHECK(cudaMemcpyAsync(logprobs, sample_lp_dev_, R * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    KR_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return true;
  }

  bool sample(const Tensor& logits, std::span<const DeviceSamplingRow> rows, std::span<const int32_t> penalty_ids,
              std::span<const int32_t> penalty_counts, std::span<const int32_t> eos_ids,
              DeviceSampleResult* out) override {
    if (rows.empty()) return true;
    flush_pending();
    KR_CHECK_MSG(mode_ == Mode::kEager, "sample inside a step graph");
    KR_CHECK(logits.dtype == DType::kF32 && logits.dim(0) == static_cast<int64_t>(rows.size()) &&
             penalty_ids.size() == penalty_counts.size());
    return sampler_->sample(logits.as<float>(), static_cast<int>(rows.size()), static_cast<int>(logits.dim(1)),
                            rows.data(), penalty_ids.data(), penalty_counts.data(),
                            static_cast<int>(penalty_ids.size()), eos_ids.data(), static_cast<int>(eos_ids.size()),
                            out, stream_);
  }

  bool implements_sample() const override { return true; }

  bool begin_graph(uint64_t key) override;
  void end_graph() override;

 private:
  enum class Mode { kEager, kCapture, kReplay };
  struct Graph {
    cudaGraphExec_t exec = nullptr;
    std::vector<size_t> copy_bytes;  // sizes of the staged copies, in order, for the replay check
  };

  // Batch-1 fusion. At batch 1 a decode step is a chain of GEMVs with small ops in
  // between; those ops are held back here and launched inside the GEMV that
  // produces or consumes their vector (cuda_gemv1.h) when the next op allows it:
  //   rms_norm(x) -> matmul            : norm in the GEMV's prologue (kFuseNorm)
  //   matmul -> add_rms_norm(res, out) : residual add in the GEMV's epilogue (kFuseResidual)
  //   matmul -> silu_mul               : SiLU·mul in the epilogue (kFuseSwiglu)
  //   matmul -> rope -> store_kv       : RoPE and the KV store in the epilogue (kFuseRope)
  // Any other op first launches what is pending, unfused and in issue order
  // (flush_pending), so every tensor the ops promise to write is written.
  static constexpr int kFuseSwiglu = 1, kFuseNorm = 2, kFuseResidual = 4, kFuseRope = 8;
  struct PendingNorm {  // out = rms_norm(x) * w, x [1, H]; also into `copy` when set (a gather of it)
    const void* x = nullptr;
    const void* w = nullptr;
    float eps = 0.0f;
    void* out = nullptr;
    int H = 0;
    void* copy = nullptr;
  };
  struct PendingGemv {  // out [1, N] = x · wᵀ, with x = norm.out computed from norm.x when norm.out is set
    const void* x = nullptr;
    const void* w = nullptr;
    void* out = nullptr;
    int N = 0, K = 0;
    PendingNorm norm;
    bool rope = false;  // a rope() of `out` is pending too (pending_rope_)
  };
  cuda::Gemv1Args gemv_args(const PendingGemv& p) const {
    cuda::Gemv1Args a;
    a.x = p.norm.out != nullptr ? p.norm.x : p.x;
    a.w = p.w;
    a.out = p.out;
    a.N = p.N;
    a.K = p.K;
    if (p.norm.out != nullptr) {
      a.norm_w = p.norm.w;
      a.eps = p.norm.eps;
      a.normed = p.norm.out;
      a.normed_copy = p.norm.copy;
    }
    return a;
  }
  void launch_pending_gemv() {
    const PendingGemv p = pending_gemv_;
    pending_gemv_ = PendingGemv{};
    if (p.out == nullptr) return;
    if (cuda::launch_gemv1(gemv_args(p), cuda::Gemv1Epilogue::kPlain, stream_)) return;
    launch_norm(p.norm);
    cuda::launch_gemv(p.x, p.w, p.out, false, 1, p.N, p.K, stream_);
  }
  void launch_norm(const PendingNorm& n) {
    if (n.out == nullptr) return;
    cuda::launch_rms_norm(nullptr, n.x, n.w, n.eps, n.out, 1, n.H, stream_);
    if (n.copy != nullptr)
      KR_CUDA_CHECK(cudaMemcpyAsync(n.copy, n.out, static_cast<size_t>(n.H) * 2, cudaMemcpyDeviceToDevice, stream_));
  }

  struct PendingRope {
    void* qkv = nullptr;
    int tokens = 0, q_heads = 0, kv_heads = 0, head_dim = 0;
  };
  // Launches every deferred op unfused, in the order they were issued: a pending
  // norm (not yet consumed by a GEMV), the GEMV, then the rope of its output.
  void flush_pending() {
    const PendingNorm n = pending_norm_;
    pending_norm_ = PendingNorm{};
    launch_norm(n);
    launch_pending_gemv();
    if (pending_rope_.qkv == nullptr) return;
    const PendingRope p = pending_rope_;
    pending_rope_ = PendingRope{};
    cuda::launch_rope(p.qkv, positions_dev(), inv_freq_dev_, p.tokens, p.q_heads, p.kv_heads, p.head_dim, stream_);
  }
  void check_norm(const Tensor& x, const Tensor& w, const Tensor& out) const {
    KR_CHECK(x.dtype == DType::kBF16 && out.dtype == DType::kBF16 && w.dtype == DType::kBF16);
    KR_CHECK(x.ndim == 2 && out.numel() == x.numel() && w.numel() == x.dim(1) && x.dim(1) % 8 == 0);
  }
  void staged_copy(void* dst, const void* src, size_t bytes);
  const int32_t* positions_dev() const { return meta_dev_ + off_positions_; }
  const int32_t* slots_dev() const { return meta_dev_ + off_slots_; }

  int device_;
  double memory_fraction_ = 0.9;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  void* cublas_ws_ = nullptr;
  std::unordered_set<void*> allocations_;

  // Step metadata: host copy, the attention tiles built from it, and the device image
  // [positions | slots | context_lens | block_tables | tiles] in meta_dev_.
  StepMetadata meta_;
  PendingNorm pending_norm_;  // a batch-1 rms_norm not launched yet
  PendingGemv pending_gemv_;  // a batch-1 matmul not launched yet
  PendingRope pending_rope_;  // a rope() not launched yet
  int fuse_ = kFuseSwiglu | kFuseNorm | kFuseRope;
  int attn_max_splits_ = 1 << 20;
  std::vector<int32_t> meta_host_;
  int32_t* meta_dev_ = nullptr;
  size_t off_positions_ = 0, off_slots_ = 0, off_ctx_ = 0, off_tables_ = 0, off_tiles_ = 0;
  int num_tiles_ = 0;
  bool decode_only_ = false;
  int tile_group_ = 0;  // GQA group the tiles were built for
  void* attn_scratch_ = nullptr;

  float* inv_freq_dev_ = nullptr;
  float* inv_freq_pinned_ = nullptr;
  size_t inv_freq_bytes_ = 0;
  std::vector<float> inv_freq_host_;
  int32_t* sample_ids_dev_ = nullptr;
  float* sample_lp_dev_ = nullptr;
  std::unique_ptr<cuda::CudaSampler> sampler_;  // Backend::sample

  // Graphs.
  Mode mode_ = Mode::kEager;
  std::unordered_map<uint64_t, Graph> graphs_;
  uint64_t graph_key_ = 0;
  char* staging_ = nullptr;  // pinned; graph copies read from here at replay time
  size_t staging_used_ = 0;
  size_t staged_copies_ = 0;
  cudaEvent_t graph_done_ = nullptr;

 public:
  // The GQA group is needed to build the tiles; the model sets it implicitly
  // through the first attention() of a step (tiles are rebuilt if it differs).
  void build_tiles(int group);
};

void CudaBackend::staged_copy(void* dst, const void* src, size_t bytes) {
  const size_t off = staging_used_;
  KR_CHECK_MSG(off + bytes <= kStagingBytes, "step graph: staged copies exceed the staging buffer");
  std::memcpy(staging_ + off, src, bytes);
  staging_used_ = align_up(off + bytes, 256);
  Graph& g = graphs_[graph_key_];
  if (mode_ == Mode::kCapture) {
    g.copy_bytes.push_back(bytes);
    KR_CUDA_CHECK(cudaMemcpyAsync(dst, staging_ + off, bytes, cudaMemcpyHostToDevice, stream_));
  } else {
    KR_CHECK_MSG(staged_copies_ < g.copy_bytes.size() && g.copy_bytes[staged_copies_] == bytes,
                 "step graph replay: copies differ from the recorded step");
  }
  ++staged_copies_;
}

void CudaBackend::set_step_metadata(const StepMetadata& m) {
  flush_pending();
  KR_CHECK(static_cast<int>(m.positions.size()) == m.num_tokens &&
           static_cast<int>(m.slot_mapping.size()) == m.num_tokens);
  KR_CHECK(static_cast<int>(m.query_start.size()) == m.num_seqs + 1 &&
           static_cast<int>(m.context_lens.size()) == m.num_seqs);
  KR_CHECK(m.block_tables.size() == static_cast<size_t>(m.num_seqs) * m.max_blocks_per_seq);
  meta_ = m;
  tile_group_ = 0;  // tiles are built at the first attention() (they depend on the GQA group)
  // Positions and slots go to the device now (rope and store_kv need them); the rest
  // together with the tiles at the first attention().
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
  Tensor dst(meta_dev_, DType::kI32, {static_cast<int64_t>(off_tiles_)});
  copy_from_host(dst, meta_host_.data(), off_tiles_ * sizeof(int32_t));
}

void CudaBackend::build_tiles(int group) {
  const int per_tile = cuda::attn_tile_tokens(group);
  std::vector<int32_t> tiles;
  bool decode_only = true;
  for (int s = 0; s < meta_.num_seqs; ++s) {
    const int b = meta_.query_start[s], e = meta_.query_start[s + 1];
    if (e - b > 1) decode_only = false;
    for (int t = b; t < e; t += per_tile) {
      tiles.push_back(s);
      tiles.push_back(t);
      tiles.push_back(std::min(per_tile, e - t));
    }
  }
  num_tiles_ = static_cast<int>(tiles.size() / 3);
  decode_only_ = decode_only;
  static_assert(sizeof(cuda::AttnTile) == 3 * sizeof(int32_t));
  Tensor dst(meta_dev_ + off_tiles_, DType::kI32, {static_cast<int64_t>(tiles.size())});
  copy_from_host(dst, tiles.data(), tiles.size() * sizeof(int32_t));
  tile_group_ = group;
}

void CudaBackend::matmul(const Tensor& x, const Tensor& w, Tensor& out) {
  if (mode_ == Mode::kReplay) return;
  PendingNorm norm;
  if (pending_norm_.out != nullptr && (pending_norm_.out == x.data || pending_norm_.copy == x.data) &&
      x.dim(0) == 1) {
    norm = pending_norm_;  // consumed by this GEMV's prologue
    pending_norm_ = PendingNorm{};
  }
  flush_pending();
  const int64_t T = x.dim(0), K = x.dim(1), N = w.dim(0);
  KR_CHECK(w.dim(1) == K && out.dim(0) == T && out.dim(1) == N);
  KR_CHECK(x.dtype == DType::kBF16 && w.dtype == DType::kBF16);
  KR_CHECK(out.dtype == DType::kBF16 || out.dtype == DType::kF32);
  const bool out_f32 = out.dtype == DType::kF32;
  if (T == 0) return;
  if (T == 1 && K % 8 == 0) {
    const PendingGemv p{x.data, w.data, out.data, static_cast<int>(N), static_cast<int>(K), norm, false};
    if (!out_f32) {
      pending_gemv_ = p;
      return;
    }
    cuda::Gemv1Args a = gemv_args(p);  // logits: nothing fuses after it
    a.out_f32 = true;
    if (cuda::launch_gemv1(a, cuda::Gemv1Epilogue::kPlain, stream_)) return;
  }
  launch_norm(norm);
  if (T <= cuda::kGemvMaxTokens && K % 8 == 0) {
    cuda::launch_gemv(x.data, w.data, out.data, out_f32, static_cast<int>(T), static_cast<int>(N),
                      static_cast<int>(K), stream_);
    return;
  }
  // Row-major out[T, N] = x[T, K] · w[N, K]ᵀ is column-major outᵀ[N, T] = w · xᵀ.
  const float alpha = 1.0f, beta = 0.0f;
  KR_CUBLAS_CHECK(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(T),
                               static_cast<int>(K), &alpha, w.data, CUDA_R_16BF, static_cast<int>(K), x.data,
                               CUDA_R_16BF, static_cast<int>(K), &beta, out.data,
                               out_f32 ? CUDA_R_32F : CUDA_R_16BF, static_cast<int>(N), CUBLAS_COMPUTE_32F,
                               CUBLAS_GEMM_DEFAULT));
}

void CudaBackend::attention(const Tensor& qkv, const KvLayer& kv, int q_heads, int kv_heads, int head_dim,
                            float scale, Tensor& out) {
  flush_pending();
  if (mode_ == Mode::kReplay) {
    // The tiles are one of the step's staged copies: keep the copy sequence identical.
    if (tile_group_ == 0) build_tiles(q_heads / kv_heads);
    return;
  }
  KR_CHECK(q_heads % kv_heads == 0 && q_heads / kv_heads <= 64);
  KR_CHECK(qkv.dim(0) == meta_.num_tokens && out.dim(0) == meta_.num_tokens);
  KR_CHECK(qkv.dim(1) == int64_t{q_heads + 2 * kv_heads} * head_dim && out.dim(1) == int64_t{q_heads} * head_dim);
  KR_CHECK_MSG(head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128 || head_dim == 256,
               "attention: unsupported head_dim");
  const int group = q_heads / kv_heads;
  if (tile_group_ != group) build_tiles(group);
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
  a.scale = scale;
  // Split the keys (decode) when there are too few tiles to fill the GPU. The split
  // depends only on shapes (tiles, block-table width), never on the context
  // lengths, so a recorded step graph stays valid for every step of its key.
  const int kv_keys = meta_.max_blocks_per_seq * meta_.block_size;
  const int rows = cuda::attn_tile_tokens(group) * group;
  a.num_splits = 1;
  a.split_keys = kv_keys;
  if (decode_only_ && num_tiles_ > 0) {
    // At least 32 keys (one key tile) per split: at 128 keys 4 splits of one tile
    // took 7.1 µs against 9.4 µs for 2 splits of two tiles (H200, merge in-kernel).
    int splits = (kTargetBlocks + num_tiles_ * kv_heads - 1) / (num_tiles_ * kv_heads);
    splits = std::max(1, std::min({splits, (kv_keys + 31) / 32, cuda::attn_max_splits(), attn_max_splits_}));
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
  cuda::launch_paged_attention(a, stream_);
}

bool CudaBackend::begin_graph(uint64_t key) {
  KR_CHECK_MSG(mode_ == Mode::kEager, "begin_graph twice");
  flush_pending();  // deferred eager ops stay outside the graph
  // The previous replay may still read the pinned staging buffer.
  KR_CUDA_CHECK(cudaEventSynchronize(graph_done_));
  graph_key_ = key;
  staging_used_ = 0;
  staged_copies_ = 0;
  auto it = graphs_.find(key);
  if (it != graphs_.end() && it->second.exec != nullptr) {
    mode_ = Mode::kReplay;
    return true;
  }
  graphs_[key].copy_bytes.clear();
  KR_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed));
  mode_ = Mode::kCapture;
  return true;
}

void CudaBackend::end_graph() {
  flush_pending();
  Graph& g = graphs_[graph_key_];
  if (mode_ == Mode::kCapture) {
    cudaGraph_t graph = nullptr;
    KR_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    KR_CUDA_CHECK(cudaGraphInstantiate(&g.exec, graph, 0));
    cudaGraphDestroy(graph);
  } else {
    KR_CHECK_MSG(mode_ == Mode::kReplay, "end_graph without begin_graph");
    KR_CHECK_MSG(staged_copies_ == g.copy_bytes.size(), "step graph replay: fewer copies than recorded");
  }
  mode_ = Mode::kEager;
  KR_CUDA_CHECK(cudaGraphLaunch(g.exec, stream_));
  KR_CUDA_CHECK(cudaEventRecord(graph_done_, stream_));
}

}  // namespace

bool cuda_device_available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

std::unique_ptr<Backend> make_cuda_backend(int device) {
  if (!cuda_device_available()) return nullptr;
  return std::make_unique<CudaBackend>(device);
}

}  // namespace kr
