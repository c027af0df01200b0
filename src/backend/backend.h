// Backend: the device operations a decoder forward pass is made of. The CPU
// backend (backend/cpu) is the float32 reference; the CUDA backend implements
// the same ops and is tested op by op against it (kr-backend-ops).
//
// Fused ops (a matmul with the small op before or after it in one kernel) are
// ops of their own, called explicitly by the model: each has a default that
// composes the unfused ops (backend.cc), and a backend overrides the ones it
// fuses. Every op runs when it is called; none is held back.
//
// Threading: a Backend and everything it allocated belong to ONE thread (the
// engine thread in the server, the main thread in tools and tests). Ops are
// enqueued in order; on CUDA they are asynchronous until synchronize() or a
// copy to host.
//
// Dtypes: weights are kBF16, kF16 or kF32 (whatever upload_weight produced), or
// quantized (a LinearWeight made by upload_quantized); activations are
// activation_dtype() (kF32 on CPU, kBF16 on CUDA); ids, positions and metadata
// are kI32; norms and softmax accumulate in float32.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/device_sampling.h"
#include "backend/kv_block_copy.h"
#include "backend/kv_cache_dtype.h"
#include "backend/quantized_matrix.h"
#include "backend/tensor.h"
#include "base/status.h"

namespace kr {

// A quantized weight as one backend repacked it (upload_quantized): opaque to
// callers, owned by that backend, freed with it.
class QuantizedWeight {
 public:
  virtual ~QuantizedWeight() = default;
};

// The weight of a Linear (or an embedding table), [N, K] with y = x · Wᵀ: a
// dense tensor as upload_weight() produced it, or a quantized weight from
// upload_quantized(). A Tensor converts to the dense kind, so ops take either.
struct LinearWeight {
  LinearWeight() = default;
  LinearWeight(const Tensor& t) : dense(t) {}  // NOLINT: implicit on purpose

  Tensor dense;                            // [N, K] when not quantized
  const QuantizedWeight* quant = nullptr;  // made and owned by one backend
  int64_t quant_rows = 0, quant_cols = 0;  // N, K of a quantized weight
  size_t quant_bytes = 0;                  // bytes one full pass reads (codes, scales, zeros)
  std::string quant_desc;                  // e.g. "awq int4 g128" (for logs and benchmarks)

  bool quantized() const { return quant != nullptr; }
  int64_t rows() const { return quantized() ? quant_rows : dense.dim(0); }
  int64_t cols() const { return quantized() ? quant_cols : dense.dim(1); }
  size_t bytes() const { return quantized() ? quant_bytes : dense.bytes(); }
};

// Per-step layout of a batch for attention and the KV cache. Tokens of all
// sequences are concatenated: sequence s owns rows [query_start[s],
// query_start[s+1]). Built on the host by the model runner; the backend
// copies it to the device in set_step_metadata() once per step.
struct StepMetadata {
  int32_t num_tokens = 0;                // T
  int32_t num_seqs = 0;                  // S
  int32_t block_size = 0;                // tokens per KV block
  int32_t max_blocks_per_seq = 0;        // width of block_tables
  int32_t max_context_len = 0;           // max over context_lens
  std::vector<int32_t> positions;        // [T] absolute position of each token
  std::vector<int32_t> slot_mapping;     // [T] block_id * block_size + offset: where its K/V go
  std::vector<int32_t> query_start;      // [S + 1] prefix sums of new tokens per sequence
  std::vector<int32_t> context_lens;     // [S] tokens in cache after this step (old + new)
  std::vector<int32_t> block_tables;     // [S, max_blocks_per_seq] block ids, row-major, -1 padded
};

// Paged KV cache of one layer: K and V each [num_blocks, block_size, kv_heads, head_dim]
// in activation_dtype(), or in kF8E4M3 (an FP8 cache, backend/kv_cache_dtype.h):
// then an element holds e4m3(x / scale) of K's or V's scale, and reads back as
// e4m3 * scale. The scales are 1.0 in a cache of activation_dtype().
struct KvLayer {
  Tensor k;
  Tensor v;
  float k_scale = 1.0f;
  float v_scale = 1.0f;
  bool fp8() const { return k.dtype == DType::kF8E4M3; }
};

struct RopeParams {
  int32_t head_dim = 0;
  // [head_dim / 2] kF32 on the backend: inverse frequencies, llama3/linear/yarn scaling
  // already applied. angle(pos, i) = pos * inv_freq[i], computed in double.
  Tensor inv_freq;
};

// How an RMS norm applies its weight to x̂ = x / sqrt(mean(x²) + eps):
enum class NormKind : uint8_t {
  kTimesWeight,         // x̂ · w, x̂ rounded to the activation dtype first (HF LlamaRMSNorm; Llama, Mistral, Qwen)
  kTimesOnePlusWeight,  // x̂ · (1 + w), all in float32, rounded once (HF Gemma2/Gemma3RMSNorm)
};

// One RMS norm: its weight [H], eps and form. `w` null: no norm, where a norm is
// optional (RmsNorm{} reads as "none").
struct RmsNorm {
  const Tensor* w = nullptr;
  float eps = 0.0f;
  NormKind kind = NormKind::kTimesWeight;
  bool present() const { return w != nullptr; }
};

// The gate activation of a gated MLP (GLU): act[i] = f(gate[i]) * up[i].
enum class Activation : uint8_t {
  kSilu,      // SwiGLU: silu ("silu" / "swish")
  kGeluTanh,  // GeGLU: gelu with the tanh approximation ("gelu_pytorch_tanh")
};

// What turns a row of the q/k/v projection into rotated q and k (Backend::rope):
// first `bias` is added to the whole row (Qwen2's q/k/v biases), then every q
// head is normalised with q_norm and every k head with k_norm (per-head RMS
// norms with [D] weights: Qwen3, Gemma 3), then q and k are rotated.
struct QkvParams {
  int q_heads = 0;                 // Hq
  int kv_heads = 0;                // Hkv
  const RopeParams* rope = nullptr;  // rope->head_dim is D
  const Tensor* bias = nullptr;    // [(Hq + 2 Hkv) D] or null
  RmsNorm q_norm = {}, k_norm = {};  // both present or both absent
  int head_dim() const { return rope->head_dim; }
  int width() const { return (q_heads + 2 * kv_heads) * rope->head_dim; }
};

// One attention call: heads, the softmax scale, and the per-layer options.
struct AttentionParams {
  int q_heads = 0, kv_heads = 0, head_dim = 0;
  float scale = 0.0f;          // scores = q·k * scale
  // > 0: a query at position p sees only the keys at positions (p - sliding_window, p]
  // (HF: kv_idx > q_idx - sliding_window). 0: every key up to p.
  int32_t sliding_window = 0;
  // > 0: scores = softcap * tanh(scores / softcap), after the scale and before the
  // mask (Gemma 2's attn_logit_softcapping). 0: none.
  float softcap = 0.0f;
};

// Rows of an activation quantized to FP8 (e4m3) for one W8A8 weight, exactly as
// that weight's matmul would quantize them itself (per token, or with its static
// input scale; its activation scale bound): written by the op that produces the
// activation (Fp8Out) and read by the matmul that consumes it (MatmulInput::fp8),
// which then runs no quantize kernel of its own. The caller owns the tensors
// (needed only where writes_fp8_rows() says so); the backend records on the host
// what its last write holds, and a matmul takes the rows only when that record
// names its own input rows and weight. A backend that never writes them (the CPU
// reference, which quantizes inside its matmul when it emulates W8A8) leaves the
// record empty, and its results are the same either way.
struct Fp8Rows {
  Tensor codes;   // [T_max, K] kF8E4M3
  Tensor scales;  // [T_max] kF32, one per row
  // The last write (host side): the data of the activation tensor quantized, its
  // rows, and the weight whose scheme they follow. rows 0: nothing valid.
  const void* x = nullptr;
  int64_t rows = 0;
  const QuantizedWeight* weight = nullptr;
  void clear() { x = nullptr, rows = 0, weight = nullptr; }
};

// Where an op writes its output rows quantized for `reader`, the weight that
// reads them next (Fp8Rows); {}: nowhere.
struct Fp8Out {
  Fp8Rows* rows = nullptr;
  const LinearWeight* reader = nullptr;
};

// The input rows of a fused matmul: x as it is, or x' = norm(x) computed on the
// way in (a norm "prologue"), which the op also writes to `normed` as rms_norm()
// would. A Tensor converts to the first kind. Without a norm, `fp8` may name x's
// FP8 rows written by the op that produced x (Fp8Rows).
struct MatmulInput {
  MatmulInput(const Tensor& rows) : x(&rows) {}
  static MatmulInput rms_normed(const Tensor& x, const RmsNorm& norm, Tensor& normed) {
    MatmulInput in(x);
    in.norm = norm;
    in.normed = &normed;
    return in;
  }
  MatmulInput with_fp8(const Fp8Rows* rows) const {
    MatmulInput in = *this;
    in.fp8 = rows;
    return in;
  }
  const Tensor* x;     // [T, K]
  RmsNorm norm = {};   // weight [K], or absent: no norm
  Tensor* normed = nullptr;  // [T, K] with a norm
  const Fp8Rows* fp8 = nullptr;  // x's FP8 rows, or null
};

// Rough rates of a backend, for a scheduler's step-time estimate (the engine's
// StepCostModel, built by its runner from these and the model's shape). Leads,
// not measurements: the engine corrects the estimate by measured step times.
struct BackendRates {
  double matmul_flop_s = 0.0;     // dense matmuls of many rows (0: unknown)
  double attention_flop_s = 0.0;  // prefill attention (q·k and p·v)
  double memory_byte_s = 0.0;     // streaming reads (weights, K/V)
  double step_overhead_s = 0.0;   // per step beyond the weights read (launches, host work)
  int32_t attention_tile_rows = 1;  // query rows (tokens × GQA group) that share one read of the keys
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual DType activation_dtype() const = 0;

  // ---- memory ----
  // Uninitialised tensor; freed by free() or when the backend is destroyed.
  virtual Tensor alloc(DType dtype, std::initializer_list<int64_t> dims) = 0;
  virtual void free(Tensor& t) = 0;
  // Weight from host memory (e.g. an mmap'd safetensors view). The backend may keep
  // a pointer to `host` (CPU) or copy it (CUDA); `host` must outlive the backend in the
  // first case. Returned dtype is the backend's choice for weights of that source dtype.
  virtual Tensor upload_weight(const Tensor& host) = 0;
  // True when upload_weight() keeps pointing at `host` (CPU), so the caller must keep
  // host memory alive; false when it copies (CUDA), so host buffers may be freed
  // right after the upload. (Addition: defaults to false.)
  virtual bool upload_keeps_host_pointer() const { return false; }
  // A quantized Linear or embedding table (backend/quantized_matrix.h), repacked
  // once into the layout this backend's kernels read; `m` may be freed afterwards.
  // The CPU reference dequantizes it to a dense float32 weight (and computes
  // without activation quantization). InvalidArgument naming m.name when this
  // backend's kernels cannot run it (e.g. a group size they do not support):
  // never a silent dense fallback.
  virtual StatusOr<LinearWeight> upload_quantized(const QuantizedMatrix& m) = 0;
  virtual void copy_from_host(Tensor& dst, const void* src, size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const Tensor& src, size_t bytes) = 0;
  virtual void fill_zero(Tensor& t) = 0;
  virtual void synchronize() = 0;
  // Bytes the KV cache may use (CPU: from a configured budget; CUDA: free memory
  // after the weights times CudaOptions::memory_fraction, less a reserve).
  virtual size_t kv_cache_budget_bytes() const = 0;

  // ---- per-step metadata ----
  // Copies `meta` to the backend; attention() and store_kv() of this step read it.
  virtual void set_step_metadata(const StepMetadata& meta) = 0;

  // ---- ops (shapes: T tokens, H hidden, V vocab, I intermediate, D head dim) ----
  // out[t, :] = table[ids[t], :] * scale. table [V, H] (dense or quantized); ids [T] i32;
  // out [T, H]. The caller passes scale already rounded as the model rounds it (Gemma:
  // sqrt(H) in the weight dtype); the product is rounded to the activation dtype; 1: a copy.
  virtual void embedding(const LinearWeight& table, const Tensor& ids, float scale, Tensor& out) = 0;
  // out = the norm of x (RmsNorm: x̂ · w or x̂ · (1 + w)). x, out [T, H] (out may be x); w [H].
  virtual void rms_norm(const Tensor& x, const RmsNorm& norm, Tensor& out) = 0;
  // residual += x; out = the norm of residual. residual, x, out [T, H].
  virtual void add_rms_norm(Tensor& residual, const Tensor& x, const RmsNorm& norm, Tensor& out) = 0;
  // out = x · wᵀ. x [T, K] activations; w [N, K] weight (dense or quantized); out
  // [T, N] (activation dtype, or kF32 when out.dtype is kF32, as for logits). A
  // quantized weight whose checkpoint quantizes activations (FP8 W8A8: static
  // input_scale or dynamic per-token) may have x quantized the same way by the
  // backend's kernels; the CPU reference never quantizes activations.
  virtual void matmul(const Tensor& x, const LinearWeight& w, Tensor& out) = 0;
  // Finishes a q/k/v projection in place (QkvParams): adds the bias, applies the
  // per-head q/k norms, then rotates q and k (rotate_half / NeoX layout, as Hugging
  // Face Llama) at the positions of the step metadata. v gets the bias only.
  // qkv [T, (Hq + 2 Hkv) D].
  virtual void rope(Tensor& qkv, const QkvParams& p) = 0;
  // Write k and v parts of qkv [T, (Hq + 2 Hkv) * D] into the paged cache at slot_mapping.
  virtual void store_kv(const Tensor& qkv, int q_heads, int kv_heads, int head_dim, KvLayer& kv) = 0;
  // Causal grouped-query attention of each new token over its sequence's cached
  // tokens [0, its position] (or its sliding window; AttentionParams): out [T, Hq * D];
  // q from qkv. out_fp8: where the backend may also write out's FP8 rows for the
  // matmul that reads out next, o_proj (Fp8Rows); one that does not write them
  // clears the record (out_fp8.rows->clear()), as the composed fused ops do.
  virtual void attention(const Tensor& qkv, const KvLayer& kv, const AttentionParams& p, Tensor& out,
                         Fp8Out out_fp8 = {}) = 0;
  // The GLU: out[t, i] = f(gu[t, i]) * gu[t, I + i], f = silu or gelu_tanh (Activation;
  // the name stays from SwiGLU, the first). gate_up [T, 2I]; out [T, I].
  virtual void silu_mul(const Tensor& gate_up, Activation f, Tensor& out) = 0;
  // out[r, :] = x[idx[r], :]. x [T, H]; idx [R] i32; out [R, H].
  virtual void gather_rows(const Tensor& x, const Tensor& idx, Tensor& out) = 0;
  // x = cap * tanh(x / cap) in place, elementwise (final_logit_softcapping). x [R, N]
  // kF32 or activation dtype; cap > 0.
  virtual void softcap(Tensor& x, float cap) = 0;

  // ---- fused ops: defaults compose the ops above (backend.cc) ----
  // The attention input: qkv = x' · wᵀ, then rope() (bias, q/k norms, rotation),
  // then store_kv() of its k and v into `kv`. x' from `in` [T, H];
  // w [(Hq + 2 Hkv) D, H] (dense or quantized); qkv [T, (Hq + 2 Hkv) D].
  virtual void qkv_rope_store(const MatmulInput& in, const LinearWeight& w, Tensor& qkv, const QkvParams& p,
                              KvLayer& kv);
  // The gated MLP input: gate_up = x' · wᵀ, then silu_mul(gate_up, f, act).
  // x' from `in` [T, H]; w [2I, H] (gate rows, then up rows); gate_up [T, 2I]; act [T, I].
  // act_fp8: where the backend may also write act's FP8 rows for the down projection (Fp8Rows).
  virtual void matmul_silu_mul(const MatmulInput& in, const LinearWeight& w, Activation f, Tensor& gate_up,
                               Tensor& act, Fp8Out act_fp8 = {});
  // A block's output joining the residual stream, and the next norm:
  // out = x · wᵀ; with out_norm present, out = rms_norm(out, out_norm) (Gemma's
  // post-attention / post-feedforward norms); then add_rms_norm(residual, out,
  // norm, normed). x [T, K] (`in` without a norm; its FP8 rows may come along);
  // w [H, K]; out, residual, normed [T, H]. normed_fp8: where the backend may also
  // write normed's FP8 rows for the matmul that reads normed next (Fp8Rows).
  virtual void matmul_add_rms_norm(const MatmulInput& in, const LinearWeight& w, Tensor& out, const RmsNorm& out_norm,
                                   Tensor& residual, const RmsNorm& norm, Tensor& normed, Fp8Out normed_fp8 = {});
  // The decoder layers of a step, all of them, for a pre-norm model without
  // post-norms or FP8 rows, as the ops above run them: for each layer l
  //   qkv_rope_store(l == 0 ? rms_normed(residual, input_norm) : normed, qkv, ...);
  //   attention(qkv, kv, attn, attn_out);
  //   matmul_add_rms_norm(attn_out, o, proj, {}, residual, mlp_norm, normed);
  //   matmul_silu_mul(normed, gate_up, activation, gate_up_out, act);
  //   matmul_add_rms_norm(act, down, proj, {}, residual, next input_norm (the
  //                       final norm after the last layer), normed).
  // The default (backend.cc) is exactly those ops. A backend whose
  // fuses_decode_stack() is true runs them as one op (the CUDA backend: one persistent
  // kernel for steps of one token, CudaOptions::decode_stack_kernel); then qkv,
  // attn_out, proj, gate_up_out and act are scratch whose contents afterwards are
  // unspecified.
  struct DecodeLayer {
    const LinearWeight* qkv = nullptr;      // [(Hq + 2 Hkv) D, H]
    const LinearWeight* o = nullptr;        // [H, Hq D]
    const LinearWeight* gate_up = nullptr;  // [2 I, H]
    const LinearWeight* down = nullptr;     // [H, I]
    RmsNorm input_norm, mlp_norm;           // both present
    const QkvParams* qkv_params = nullptr;
    const AttentionParams* attn_params = nullptr;
    KvLayer* kv = nullptr;
  };
  struct DecodeStack {
    std::span<const DecodeLayer> layers;
    RmsNorm final_norm;
    Activation activation = Activation::kSilu;
    Tensor* residual = nullptr;     // [T, H]: in, the embedding; out, after the last layer
    Tensor* normed = nullptr;       // [T, H]: out, the final norm of residual
    Tensor* qkv = nullptr;          // [T, (Hq + 2 Hkv) D]
    Tensor* attn_out = nullptr;     // [T, Hq D]
    Tensor* proj = nullptr;         // [T, H]
    Tensor* gate_up_out = nullptr;  // [T, 2 I]
    Tensor* act = nullptr;          // [T, I]
  };
  virtual void decode_stack(const DecodeStack& s);
  // Whether decode_stack(s) runs as one fused op at this step (never on the default).
  virtual bool fuses_decode_stack(const DecodeStack& s) const {
    (void)s;
    return false;
  }
  // Called once after the weights are uploaded (eager, outside step graphs, before
  // the KV cache is allocated: each layer's kv only gives the cache's element type, its
  // tensors hold no memory yet; residual and the other scratch are null), for a model
  // whose steps may run through decode_stack: a backend may prepare what its fused
  // form needs (the CUDA backend: the weights' images in its kernel's read order, and
  // only for a model it will run). Default: nothing.
  virtual void prepare_decode_stack(const DecodeStack& s) { (void)s; }
  // Whether this backend's ops write Fp8Rows for matmuls with w (the CUDA backend:
  // FP8 W8A8 weights), so that a caller allocates and passes them only then.
  virtual bool writes_fp8_rows(const LinearWeight& w) const {
    (void)w;
    return false;
  }
  // Whether attention() writes out's FP8 rows (for an o_proj with writes_fp8_rows):
  // the caller allocates attention's Fp8Rows only then (the CUDA backend:
  // CudaOptions::fp8_attention_out).
  virtual bool attention_writes_fp8_rows() const { return false; }

  // ---- optional (additions by the CUDA backend; defaults keep other backends unchanged) ----
  // Greedy sampling on the device: for each row r of logits [R, V] f32, ids[r] =
  // argmax (lowest id on ties) and logprobs[r] = its log-softmax. Host arrays of R
  // entries; synchronous. Returns false when the backend does not implement it.
  virtual bool argmax_logprob(const Tensor& logits, int32_t* ids, float* logprobs) {
    (void)logits, (void)ids, (void)logprobs;
    return false;
  }
  // Full sampling on the device (semantics and row parameters in
  // backend/device_sampling.h): for each row r of logits [R, V] f32, out[r] gets
  // the chosen id, its logprob, the non-finite flag and rows[r].top_logprobs top
  // logprobs; only those cross to the host. rows [R]; penalty_ids /
  // penalty_counts [P], each row reading its [penalty_begin, penalty_end) range
  // (ids ascending, distinct, in [0, V)); eos_ids: suppressed in rows with
  // suppress_eos. out: host array of R. Eager only (not between begin_graph and
  // end_graph); synchronous. Returns false (nothing done) when the backend does
  // not implement it or cannot serve these rows; the caller samples on the host.
  virtual bool sample(const Tensor& logits, std::span<const DeviceSamplingRow> rows,
                      std::span<const int32_t> penalty_ids, std::span<const int32_t> penalty_counts,
                      std::span<const int32_t> eos_ids, DeviceSampleResult* out) {
    (void)logits, (void)rows, (void)penalty_ids, (void)penalty_counts, (void)eos_ids, (void)out;
    return false;
  }
  // Whether sample() is implemented at all, so a caller need not draw random bits
  // for rows a backend would refuse.
  virtual bool implements_sample() const { return false; }
  // ---- overlapped greedy decode (ForwardRunner::launch / collect) ----
  // The engine may launch decode step t + 1 before it reads step t's tokens; step
  // t + 1 then takes its token ids from step t's argmax on the backend.
  // launch_argmax: argmax_logprob's work on logits [R, V] f32, enqueued after every
  // op before it; the host does not wait. Returns a ticket (tickets grow from 1), or
  // -1 where unsupported (then nothing was enqueued). At most kArgmaxSlots launches
  // may be unread: launching another overwrites the oldest unread one's results.
  // read_argmax(ticket, ...): waits for that launch only (not for ops enqueued after
  // it) and copies its R ids and logprobs into host arrays of R.
  // feed_sampled_ids(ids): an op (recorded in a step graph, run after every op
  // before it): ids [T] int32 on the backend gets the first T ids of the latest
  // launch_argmax enqueued before it (T <= that launch's R). Eager or inside a graph.
  static constexpr int kArgmaxSlots = 2;
  virtual bool implements_launch_argmax() const { return false; }
  virtual int64_t launch_argmax(const Tensor& logits) {
    (void)logits;
    return -1;
  }
  virtual void read_argmax(int64_t ticket, int32_t* ids, float* logprobs);
  virtual void feed_sampled_ids(Tensor& ids);
  // Token masks of constrained decoding, applied to the logits before any
  // sampling path: for m in [0, M), row r = rows[m] of logits [R, V] f32 gets
  // -inf at every id i whose bit (masks[m * words_per_row + i / 32] >> (i % 32))
  // & 1 is 0 (words_per_row >= ceil(V / 32)). Every NaN or ±Inf entry (a broken
  // forward), allowed or not, becomes +Inf, so that every sampling path reports
  // the row non-finite, as it would have the unmasked row (rows distinct;
  // elementwise, so any split of the work gives the same result).
  // masks: host memory [M, words_per_row]; the call may return
  // before the copy is done when masks lies in token_mask_host_buffer(), which
  // the caller must then not rewrite before the step's sampling has returned
  // (sampling is synchronous). Eager only. The default (backend.cc) is the CPU
  // reference: it copies each row to the host, masks it and copies it back.
  virtual void apply_token_mask(Tensor& logits, std::span<const int32_t> rows, const uint32_t* masks,
                                size_t words_per_row);
  // Host memory for the masks of one step (words uint32 words), from which
  // apply_token_mask copies without staging (pinned on CUDA); valid until the
  // next call. nullptr (the default): the caller uses its own memory.
  virtual uint32_t* token_mask_host_buffer(size_t words) {
    (void)words;
    return nullptr;
  }
  // Step graphs (CUDA graphs) of decode steps (one new token per sequence): a
  // caller brackets one forward step with begin_graph(key) ... end_graph(). The
  // first step of a key is recorded; on later steps of that key
  // replaying_graph() is true: the caller then issues only the step's
  // host->device copies (set_step_metadata, copy_from_host), in the recorded
  // order, and no op; end_graph() runs the recording on that fresh data. So every
  // step of one key must issue the same ops on the same tensors with the same
  // shapes (decode steps of one batch size and block-table width). copy_to_host
  // is not allowed in between. free() forgets every recording (one may refer to the
  // freed memory), so a key recorded for one model is recorded again for the next.
  // Returns false (and does nothing) where unsupported.
  virtual bool begin_graph(uint64_t key) {
    (void)key;
    return false;
  }
  virtual bool replaying_graph() const { return false; }
  virtual void end_graph() {}
  // Rates for a step-time estimate (BackendRates); default: unknown.
  virtual BackendRates rates() const { return {}; }
  // Whether the first matmul of a new shape costs milliseconds of kernel choice and
  // loading (CUDA: cuBLAS), so that warming the step shapes up at load pays.
  virtual bool first_shape_is_slow() const { return false; }

  // ---- KV blocks <-> host memory: the prefix cache's host tier (engine/kv_host_tier.h) ----
  // Host memory for the tier: page-locked where the device has it (CUDA), so block
  // copies are DMA and asynchronous; plain memory by default. nullptr when refused.
  virtual void* alloc_host_memory(size_t bytes);
  virtual void free_host_memory(void* p, size_t bytes);
  // Copies whole KV blocks between the paged caches of `layers` (L layers, each K and V
  // [num_blocks, block_size, kv_heads, head_dim]) and `host`, which holds slot after
  // slot, each slot layer after layer, K then V: layer l's K of slot s is the B bytes at
  // host + ((s * L + l) * 2) * B and its V the next B, B = one layer's block of K
  // (block_size * kv_heads * head_dim * dtype size). to_host: device -> host, else back.
  // Runs after every op enqueued before it and after every earlier copy. Returns a
  // ticket (tickets grow; 0: done already). The default copies synchronously through
  // copy_to_host/copy_from_host; CUDA copies on a stream of its own.
  virtual uint64_t copy_kv_blocks(std::span<const KvLayer> layers, void* host, std::span<const KvBlockCopy> copies,
                                  bool to_host);
  // Whether the copies of `ticket` (and all earlier ones) are done. Never blocks.
  virtual bool kv_copies_done(uint64_t ticket) {
    (void)ticket;
    return true;
  }
  // Ops enqueued from now on run after the copies of `ticket` (the device waits; the host does not).
  virtual void wait_kv_copies(uint64_t ticket) { (void)ticket; }
};

// Creates the CPU reference backend. threads <= 0: hardware concurrency.
std::unique_ptr<Backend> make_cpu_backend(int threads, size_t kv_cache_bytes);

}  // namespace kr
