// CudaBackend: the Backend ops on one GPU. Everything is enqueued on one stream;
// host<->device copies are the only synchronisation points. Each op launches its
// kernels when it is called. At batch 1 the fused ops (qkv_rope_store,
// matmul_silu_mul) run as one split-K GEMV with the small op in its prologue or
// epilogue (cuda_gemv1.h: q/k/v bias, q/k norms, GELU included); at other batch
// sizes they run the matmul and one kernel for the rest. matmul_add_rms_norm is
// the matmul and one norm kernel (with Gemma's norm of the matmul's output).
#include "backend/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_gemv1.h"
#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/cuda_sampling.h"
#include "base/check.h"

namespace kr {
namespace {

constexpr size_t kStagingBytes = size_t{32} << 20;         // pinned host bytes a graph step may copy in
constexpr size_t kMetaInts = size_t{8} << 20;              // device int32 slots for step metadata
constexpr size_t kAttnScratchBytes = size_t{256} << 20;    // split-K partials
constexpr size_t kCublasWorkspaceBytes = size_t{64} << 20;
constexpr size_t kReserveBytes = size_t{1} << 30;          // left free after the KV cache: workspace, cuBLAS
constexpr int kTargetBlocks = 528;                         // 4 blocks per SM (132 SMs) for split decode
constexpr int kMaxSampleRows = 4096;                       // rows of one argmax_logprob call
// What the constructor allocates on the device.
constexpr size_t kFixedDeviceBytes = kCublasWorkspaceBytes + kMetaInts * sizeof(int32_t) + kAttnScratchBytes +
                                     kMaxSampleRows * (sizeof(int32_t) + sizeof(float));

size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaOptions& options) : options_(options) {
    KR_CHECK_MSG(options_.memory_fraction >= 0.05 && options_.memory_fraction <= 0.99,
                 "CudaOptions::memory_fraction must be in [0.05, 0.99]");
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
    KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&sample_ids_dev_), kMaxSampleRows * sizeof(int32_t)));
    KR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&sample_lp_dev_), kMaxSampleRows * sizeof(float)));
    sampler_ = std::make_unique<cuda::CudaSampler>();  // its device and pinned buffers (grown on demand)
    KR_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&staging_), kStagingBytes, cudaHostAllocDefault));
    KR_CUDA_CHECK(cudaEventCreateWithFlags(&graph_done_, cudaEventDisableTiming));
    cuda::configure_attention_kernels();
  }

  // Teardown ignores errors: a lost device must not turn exit into an abort.
  ~CudaBackend() override {
    cudaStreamSynchronize(stream_);
    for (auto& [key, g] : graphs_) cudaGraphExecDestroy(g.exec);
    for (const auto& [p, bytes] : allocations_) cudaFree(p);
    cudaFree(cublas_ws_);
    cudaFree(meta_dev_);
    cudaFree(attn_scratch_);
    cudaFree(sample_ids_dev_);
    cudaFree(sample_lp_dev_);
    sampler_.reset();
    cudaFreeHost(staging_);
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
    allocations_.emplace(p, std::max<size_t>(t.bytes(), 16));
    allocated_bytes_ += std::max<size_t>(t.bytes(), 16);
    t.data = p;
    return t;
  }

  void free(Tensor& t) override {
    if (t.data == nullptr) return;
    if (auto it = allocations_.find(t.data); it != allocations_.end()) {
      allocated_bytes_ -= it->second;
      allocations_.erase(it);
      KR_CUDA_CHECK(cudaStreamSynchronize(stream_));
      KR_CUDA_CHECK(cudaFree(t.data));
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
    if (host.dtype == dst_type) {
      KR_CUDA_CHECK(cudaMemcpy(p, host.data, host.bytes(), cudaMemcpyHostToDevice));
    } else {
      void* tmp = nullptr;
      KR_CUDA_CHECK(cudaMalloc(&tmp, host.bytes()));
      KR_CUDA_CHECK(cudaMemcpy(tmp, host.data, host.bytes(), cudaMemcpyHostToDevice));
      cuda::launch_to_bf16(tmp, host.dtype == DType::kF16, host.dtype == DType::kF32, p, host.numel(), stream_);
      KR_CUDA_CHECK(cudaStreamSynchronize(stream_));
      KR_CUDA_CHECK(cudaFree(tmp));
    }
    return t;
  }

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

  void embedding(const Tensor& table, const Tensor& ids, float scale, Tensor& out) override {
    const cudaStream_t s = op_stream();
    KR_CHECK(table.dtype == DType::kBF16 && out.dtype == DType::kBF16 && ids.dim(0) == out.dim(0));
    KR_CHECK(table.dim(1) == out.dim(1) && out.dim(1) % 8 == 0);
    cuda::launch_embedding(table.data, ids.as<int32_t>(), scale, out.data, static_cast<int>(out.dim(0)),
                           static_cast<int>(out.dim(1)), s);
  }

  void rms_norm(const Tensor& x, const RmsNorm& norm, Tensor& out) override {
    const cudaStream_t s = op_stream();
    check_norm(x, norm, out);
    cuda::launch_rms_norm(norm_args(nullptr, x, norm, out), s);
  }

  void add_rms_norm(Tensor& residual, const Tensor& x, const RmsNorm& norm, Tensor& out) override {
    const cudaStream_t s = op_stream();
    check_norm(x, norm, out);
    KR_CHECK(residual.numel() == x.numel() && residual.dtype == DType::kBF16);
    cuda::launch_rms_norm(norm_args(residual.data, x, norm, out), s);
  }

  void matmul(const Tensor& x, const Tensor& w, Tensor& out) override;

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
                          kv_heads, head_dim, s);
  }

  void attention(const Tensor& qkv, const KvLayer& kv, const AttentionParams& p, Tensor& out) override;

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

  void qkv_rope_store(const MatmulInput& in, const Tensor& w, Tensor& qkv, const QkvParams& p,
                      KvLayer& kv) override;
  void matmul_silu_mul(const MatmulInput& in, const Tensor& w, Activation f, Tensor& gate_up,
                       Tensor& act) override;
  void matmul_add_rms_norm(const Tensor& x, const Tensor& w, Tensor& out, const RmsNorm& out_norm,
                           Tensor& residual, const RmsNorm& norm, Tensor& normed) override;

  bool argmax_logprob(const Tensor& logits, int32_t* ids, float* logprobs) override {
    KR_CHECK_MSG(mode_ == Mode::kEager, "argmax_logprob inside a step graph");
    const int64_t R = logits.dim(0), V = logits.dim(1);
    KR_CHECK(logits.dtype == DType::kF32 && R <= kMaxSampleRows);
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
  bool replaying_graph() const override { return mode_ == Mode::kReplay; }
  void end_graph() override;

 private:
  enum class Mode { kEager, kCapture, kReplay };
  struct Graph {
    cudaGraphExec_t exec = nullptr;
    std::vector<size_t> copy_bytes;  // sizes of the staged copies, in order, for the replay check
  };
  // tile_group_ of a decode step: one token per tile whatever the GQA group.
  static constexpr int kAnyGroup = -1;

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
  void check_input(const MatmulInput& in, const Tensor& w) const {
    KR_CHECK(in.x->ndim == 2 && w.ndim == 2 && in.x->dim(1) == w.dim(1));
    if (in.norm.present()) check_norm(*in.x, in.norm, *in.normed);
  }
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
    KR_CHECK(kv.k.dtype == DType::kBF16 && kv.v.dtype == DType::kBF16 &&
             kv.k.numel() % (int64_t{kv_heads} * head_dim) == 0);
  }
  // Appends (seq, first token, count) tiles of at most per_tile tokens for every sequence.
  void append_tiles(int per_tile, std::vector<int32_t>& out) const;
  void build_tiles(int group);
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
  int tile_group_ = 0;  // GQA group the tiles were built for (0: none yet; kAnyGroup: decode step)
  void* attn_scratch_ = nullptr;

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

void CudaBackend::append_tiles(int per_tile, std::vector<int32_t>& out) const {
  for (int s = 0; s < meta_.num_seqs; ++s) {
    const int b = meta_.query_start[s], e = meta_.query_start[s + 1];
    for (int t = b; t < e; t += per_tile) {
      out.push_back(s);
      out.push_back(t);
      out.push_back(std::min(per_tile, e - t));
    }
  }
}

void CudaBackend::set_step_metadata(const StepMetadata& m) {
  KR_CHECK(static_cast<int>(m.positions.size()) == m.num_tokens &&
           static_cast<int>(m.slot_mapping.size()) == m.num_tokens);
  KR_CHECK(static_cast<int>(m.query_start.size()) == m.num_seqs + 1 &&
           static_cast<int>(m.context_lens.size()) == m.num_seqs);
  KR_CHECK(m.block_tables.size() == static_cast<size_t>(m.num_seqs) * m.max_blocks_per_seq);
  meta_ = m;
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
  tile_group_ = 0;
  num_tiles_ = 0;
  if (decode_only_) {
    append_tiles(1, meta_host_);
    num_tiles_ = static_cast<int>((meta_host_.size() - off_tiles_) / 3);
    tile_group_ = kAnyGroup;
  }
  Tensor dst(meta_dev_, DType::kI32, {static_cast<int64_t>(meta_host_.size())});
  copy_from_host(dst, meta_host_.data(), meta_host_.size() * sizeof(int32_t));
}

void CudaBackend::build_tiles(int group) {
  std::vector<int32_t> tiles;
  append_tiles(cuda::attn_tile_tokens(group), tiles);
  num_tiles_ = static_cast<int>(tiles.size() / 3);
  static_assert(sizeof(cuda::AttnTile) == 3 * sizeof(int32_t));
  Tensor dst(meta_dev_ + off_tiles_, DType::kI32, {static_cast<int64_t>(tiles.size())});
  copy_from_host(dst, tiles.data(), tiles.size() * sizeof(int32_t));
  tile_group_ = group;
}

void CudaBackend::matmul(const Tensor& x, const Tensor& w, Tensor& out) {
  const cudaStream_t s = op_stream();
  const int64_t T = x.dim(0), K = x.dim(1), N = w.dim(0);
  KR_CHECK(w.dim(1) == K && out.dim(0) == T && out.dim(1) == N);
  KR_CHECK(x.dtype == DType::kBF16 && w.dtype == DType::kBF16);
  KR_CHECK(out.dtype == DType::kBF16 || out.dtype == DType::kF32);
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

void CudaBackend::qkv_rope_store(const MatmulInput& in, const Tensor& w, Tensor& qkv, const QkvParams& p,
                                 KvLayer& kv) {
  const cudaStream_t s = op_stream();
  check_input(in, w);
  check_qkv(qkv, p);
  check_kv(kv, p.kv_heads, p.head_dim());
  KR_CHECK(w.dim(0) == qkv.dim(1) && in.x->dim(0) == qkv.dim(0));
  KR_CHECK(w.dtype == DType::kBF16 && in.x->dtype == DType::kBF16 && qkv.dtype == DType::kBF16);
  const int T = static_cast<int>(qkv.dim(0));
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

void CudaBackend::matmul_silu_mul(const MatmulInput& in, const Tensor& w, Activation f, Tensor& gate_up,
                                  Tensor& act) {
  const cudaStream_t s = op_stream();
  check_input(in, w);
  const int64_t T = in.x->dim(0), I = act.dim(1);
  KR_CHECK(w.dim(0) == 2 * I && gate_up.dim(0) == T && gate_up.dim(1) == 2 * I && act.dim(0) == T && I % 8 == 0);
  KR_CHECK(w.dtype == DType::kBF16 && in.x->dtype == DType::kBF16 && gate_up.dtype == DType::kBF16 &&
           act.dtype == DType::kBF16);
  if (T == 1) {
    // One GEMV: a block owns rows i of the gate and I + i of the up projection.
    cuda::Gemv1Args a = gemv1_args(in, w, gate_up);
    a.act = act.data;
    a.activation = activation_code(f);
    if (cuda::launch_gemv1(a, cuda::Gemv1Epilogue::kSwiglu, options_.pdl, s)) return;
  }
  matmul(input_rows(in), w, gate_up);
  cuda::launch_silu_mul(gate_up.data, activation_code(f), act.data, static_cast<int>(T), static_cast<int>(I), s);
}

void CudaBackend::matmul_add_rms_norm(const Tensor& x, const Tensor& w, Tensor& out, const RmsNorm& out_norm,
                                      Tensor& residual, const RmsNorm& norm, Tensor& normed) {
  const cudaStream_t s = op_stream();
  matmul(x, w, out);
  check_norm(out, norm, normed);
  KR_CHECK(residual.numel() == out.numel() && residual.dtype == DType::kBF16);
  // One norm kernel: out's own norm (Gemma), the residual add, and the next norm.
  cuda::RmsNormArgs a = norm_args(residual.data, out, norm, normed);
  if (out_norm.present()) {
    check_norm(out, out_norm, out);
    KR_CHECK(out_norm.kind == norm.kind && out_norm.eps == norm.eps);
    a.pre_w = out_norm.w->data;
    a.x_normed = out.data;
  }
  cuda::launch_rms_norm(a, s);
}

void CudaBackend::attention(const Tensor& qkv, const KvLayer& kv, const AttentionParams& p, Tensor& out) {
  const cudaStream_t s = op_stream();
  const int q_heads = p.q_heads, kv_heads = p.kv_heads, head_dim = p.head_dim;
  KR_CHECK(q_heads > 0 && kv_heads > 0 && q_heads % kv_heads == 0 && q_heads / kv_heads <= 64);
  KR_CHECK(p.sliding_window >= 0 && p.softcap >= 0.0f);
  KR_CHECK(qkv.dim(0) == meta_.num_tokens && out.dim(0) == meta_.num_tokens);
  KR_CHECK(qkv.dim(1) == int64_t{q_heads + 2 * kv_heads} * head_dim && out.dim(1) == int64_t{q_heads} * head_dim);
  KR_CHECK_MSG(head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128 || head_dim == 256,
               "attention: unsupported head_dim");
  check_kv(kv, kv_heads, head_dim);
  const int group = q_heads / kv_heads;
  if (tile_group_ != kAnyGroup && tile_group_ != group) build_tiles(group);
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
}

bool CudaBackend::begin_graph(uint64_t key) {
  KR_CHECK_MSG(mode_ == Mode::kEager, "begin_graph twice");
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
  Graph& g = graphs_[graph_key_];
  if (mode_ == Mode::kCapture) {
    cudaGraph_t graph = nullptr;
    KR_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    KR_CUDA_CHECK(cudaGraphInstantiate(&g.exec, graph, 0));
    KR_CUDA_CHECK(cudaGraphDestroy(graph));
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

bool cuda_device_memory(int device, size_t* free_bytes, size_t* total_bytes) {
  if (!cuda_device_available() || cudaSetDevice(device) != cudaSuccess) return false;
  return cudaMemGetInfo(free_bytes, total_bytes) == cudaSuccess;
}

std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options) {
  if (!cuda_device_available()) return nullptr;
  return std::make_unique<CudaBackend>(options);
}

}  // namespace kr
