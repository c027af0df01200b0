// The CUDA backend: bf16 activations and weights on one NVIDIA GPU, cuBLAS for
// GEMMs with more than a few rows, own kernels for the rest (cuda_kernels.cu,
// cuda_gemv1.cu, cuda_attention.cu, cuda_sampling.cu); quantized weights
// (upload_quantized) repacked for cuda_qgemm.cu, FP8 W8A8 through cuBLASLt
// (cuda_fp8_gemm.h). Step graphs via Backend::begin_graph/end_graph.
//
// Threading: like every Backend, owned and called by one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"

namespace kr {

// Settings of the CUDA backend, fixed when it is made. Programs read them from
// their flags or environment (e.g. kr-serve: KR_GPU_MEMORY_FRACTION, KR_PDL) and
// pass them down; nothing below reads the environment.
struct CudaOptions {
  int device = 0;
  // Share of the device's free memory (measured after the weights) that the KV
  // cache may use, less a reserve for workspace; in [0.05, 0.99].
  double memory_fraction = 0.9;
  // Programmatic dependent launch for the batch-1 GEMVs: each requests its first
  // weights while the kernel before it drains. Off serialises every kernel, for
  // profiling per kernel or to rule it out when a result looks wrong.
  bool pdl = true;
  // With pdl, also for the norm kernels (x*w form) of steps of up to 4 tokens (the
  // one after o_proj and after down_proj): the norm's block is resident and waiting
  // when the GEMV before it ends, instead of being launched then (measured gain and
  // loss: docs/performance.md; kr-cuda-bench --no-pdl-norms).
  bool pdl_norms = true;
  // With pdl, also the kernels right after a GEMM that signals its dependents after
  // its main loop (the 4-bit wgmma GEMM of 9-64 rows, cuda_qgemm_wgmma.h): the norm
  // of matmul_add_rms_norm and the flash decode attention after qkv_rope_store.
  // Their blocks then become resident as the GEMM's blocks finish, instead of their
  // launch starting when it has ended. After the GEMMs that signal at their start
  // (the FP8 ones) PDL on the norm measured slower and is not used (measured gain
  // and loss: docs/performance.md; kr-cuda-bench --no-pdl-after-late-signal); the
  // flash decode kernel, which now loads its older keys before its wait, has PDL
  // after every kernel with pdl_flash_decode below.
  bool pdl_after_late_signal = true;
  // With pdl, the flash decode kernel after every kernel (not only after a
  // late-signalling GEMM): it loads the step's metadata and the first stages of
  // its older keys before waiting on the kernel before it (cuda_flash_decode.cu).
  // kr-cuda-bench --no-pdl-flash-decode, to compare.
  bool pdl_flash_decode = true;
  // Quantized Linears (cuda_qgemm.h): from this many rows on, integer (and FP8
  // weight-only) weights are dequantized to bf16 and multiplied by cuBLAS (vLLM's
  // AWQ path does so from 256 tokens); below, the tensor-core kernels that
  // dequantize in registers run. 129: the 4-bit wgmma kernel takes up to 128 rows
  // in one pass; two passes are no faster than the dense path (Llama-3.2-3B AWQ on
  // an H200: batch 160 / 192 / 240 24.2k / 28.8k / 30.8k tok/s against 24.1k / 29.0k
  // / 32.9k dense; docs/performance.md). kr-cuda-bench --quant-dense-min N.
  int quant_dense_min_tokens = 129;
  // The same for 8-bit integer codes (GPTQ-8, W8A16, MLX-8), which have no wgmma
  // kernel: the mma.sync kernel (kV2) below, dense from 65 rows (3B GPTQ-8 decode at
  // batch 80 / 96 / 128 on an H200: 9.5k / 11.3k / 14.9k tok/s on kV2, 13.8k / 16.2k /
  // 20.9k dense; equal at 64). kr-cuda-bench --quant8-dense-min N.
  int quant8_dense_min_tokens = 65;
  // FP8 weights whose checkpoint quantizes activations (static input_scale or
  // dynamic per-token): from this many rows on, the activations are quantized to
  // FP8 and cuBLASLt's FP8 GEMM runs (W8A8); below, the dequantizing kernels
  // (W8A16, bf16 activations).
  int fp8_w8a8_min_tokens = 9;
  // W8A8 matmuls of at most this many rows (up to 64) run the GEMM of
  // cuda_fp8_gemm_small.h (weights streamed once, split-K over every SM, e4m3 widened
  // to f16 for mma.sync) instead of the ones below; 0: never (kr-cuda-bench and
  // kr-backend-ops --fp8-small-gemm N). Default 0: on an H200 the wgmma GEMM below is
  // faster at every T (Llama-3.1-8B FP8 decode, docs/performance.md).
  int fp8_small_gemm_max_tokens = 0;
  // W8A8 matmuls of more rows than fp8_small_gemm_max_tokens and at most this many
  // (up to 64) run the wgmma GEMM of cuda_fp8_gemm_wgmma.h (weights streamed once,
  // K split over clusters, e4m3 products on wgmma) instead of cuBLASLt's, whose
  // 128 x 128 tiles leave most SMs idle at decode sizes; 0: never (kr-cuda-bench and
  // kr-backend-ops --fp8-wgmma-gemm N).
  int fp8_wgmma_gemm_max_tokens = 64;
  // The K slices of both decode-size FP8 GEMMs forced to this many (0: their own
  // choice per shape); for tests (kr-backend-ops --only fp8_small).
  int fp8_small_gemm_split = 0;
  // The W8A8 activations quantized by the op that produces them (Fp8Rows in
  // backend/backend.h): the RMS norms (of qkv_rope_store's norm prologue and of
  // matmul_add_rms_norm) and the GLU of matmul_silu_mul write the FP8 rows next to
  // their bf16 output, and the W8A8 matmul that reads them runs no quantize kernel.
  // Off: each W8A8 matmul quantizes its input itself (kr-cuda-bench
  // --no-fused-act-quant, to compare). The bytes are the same either way.
  bool fuse_fp8_act_quant = true;
  // The q/k/v projection of a W8A8 layer on the wgmma GEMM (heads of 128 dims, no
  // per-head q/k norms) finishes in that GEMM's epilogue: bias, RoPE and the k/v
  // cache store (cuda_fp8_gemm_wgmma.h Fp8QkvRope), instead of a rope kernel after
  // it. The bytes are the same either way (kr-backend-ops --only fp8_act compares);
  // off: the rope kernel (kr-cuda-bench --no-fp8-rope-epilogue, to compare).
  bool fp8_qkv_rope_epilogue = true;
  // With fuse_fp8_act_quant, attention also writes o_proj's FP8 rows (Fp8Rows):
  // on the flash decode kernel the last block of each token over its kv heads
  // quantizes the token's output row (cuda_flash_attention.h out_fp8); on the
  // other attention kernels a quantize kernel right after them. The bytes are the
  // same either way (kr-backend-ops --only fp8_act compares); off: o_proj
  // quantizes its input itself (kr-cuda-bench --no-fp8-attention-out, to compare).
  // Off by default until kr-backend-ops --only fp8_act has run it on a GPU (docs/performance.md).
  bool fp8_attention_out = false;
  // The kernel of quantized Linears of at most 8 rows (cuda_qgemm.h QGemvPath):
  // kStream (qgemv_stream_kernel), kMma (qgemm_kernel's T <= 8 shape), kRow (FP8
  // at T == 1: the batch-1 GEMV of cuda_gemv1.h on the e4m3 rows; kMma otherwise),
  // kRowTc (kRow with its products on the tensor cores, Gemv1Args::fp8_tc), or
  // kAuto: kStream for 4- and 8-bit integer codes, kRowTc for FP8 (kMma at T 2..8).
  // kr-cuda-bench and kr-backend-ops --qgemv auto|stream|mma|row|row-tc;
  // kr-cuda-bench --gemv-bench --quant FMT times them per shape.
  enum class QuantGemv { kAuto, kMma, kStream, kRow, kRowTc };
  QuantGemv quant_gemv = QuantGemv::kAuto;
  // kStream's K slices per tile pair (1..8, a thread-block cluster); 0: its own
  // choice per shape. For measurements (kr-cuda-bench --qgemv-split N).
  int quant_gemv_split = 0;
  // The kernel of quantized Linears of 9 to quant_dense_min_tokens - 1 rows
  // (cuda_qgemm.h QGemmPath): kV1 (qgemm_kernel, 32 tokens x 32 rows per block) or
  // kV2 (qgemm_batched_kernel, 64 tokens x 256 rows per block, x staged in shared
  // memory; integer codes, FP8 takes kV1): Llama-3.2-3B AWQ / MLX-4 batch-64 decode
  // 11.3k / 11.5k -> 12.4k / 12.3k tok/s against kV1 on an H200
  // (docs/performance.md). kWgmma (the default): 4-bit codes from 9 rows on
  // wgmma (cuda_qgemm_wgmma.h), kV2 for the other codes: 3B AWQ batch-64 decode 13.8k ->
  // 18.7k-19.0k tok/s, MLX-4 13.5k -> 18.2k-18.6k. The wgmma kernel also takes 4-bit
  // codes above 64 rows (m64n128k16, passes of 128 tokens): batch 80 / 128 decode
  // 11.7k / 18.2k (kV2) -> 21.1k / 30.4k tok/s. kr-cuda-bench and kr-backend-ops
  // --qgemm-batched v1|v2|wgmma.
  enum class QuantGemm { kV1, kV2, kWgmma };
  QuantGemm quant_gemm = QuantGemm::kWgmma;
  // The flash (tensor-core) attention kernels for head dims 64/128/256; off: the
  // older paged kernel for every step (kr-cuda-bench --no-flash, to compare).
  bool flash_attention = true;
  // Decode-only steps of at most 4 sequences (the GEMV batches) whose block-table
  // width is under this many keys use the older paged kernel, which is faster there
  // (3B Llama shape on the H200, ctx 128: batch 1 472 tok/s with it, 440 with the
  // flash decode kernel; at batch 64 flash is faster, 18.6k vs 16.6k tok/s; at ctx
  // 4096 equal: docs/performance.md). Shape-only (batch size and table width, the
  // step graph's key), so a recorded graph keeps its kernel. 0: flash everywhere.
  int flash_decode_min_keys = 2048;
  // The flash decode kernel's block shape (cuda_flash_attention.h decode_warps): 0
  // lets the split policy pick 4 or 2 warps a block per step shape; 4 or 2 forces
  // one (kr-cuda-bench and kr-backend-ops --flash-decode-warps N, to compare).
  int flash_decode_warps = 0;
  // Shape of the flash prefill kernel at head dim 128, in [0, 6) (cuda::
  // kFlashPrefillVariants; cuda_flash_prefill.cu says what each changes). Default 1
  // (kv2: K and V double-buffered, one barrier per key tile), 14-16% faster than 0
  // (base) at every chunk and context measured, with the same output bits
  // (kr-cuda-bench --attn-bench, docs/performance.md); kr-backend-ops
  // --prefill-variants checks them all.
  int flash_prefill_variant = 1;
  // Prefill launches over at most flash_prefill_short_max_keys keys (the largest
  // context of the step's prefill tiles, or the block-table width in a step graph)
  // run flash_prefill_short_variant instead; 0: never. Default variant 5 (w8-bc128:
  // 8 warps of 16 rows, 128-key tiles, one block an SM) up to 2,048 keys: on the
  // H200 (3B shape, a prompt alone) 512 / 1,024 / 2,048 / 4,096 tokens take 28 / 68
  // / 172 / 512 us against 86 / 68 / 299 / 490 with variant 1, and pp512 end to end
  // rises 1.16-1.30x (docs/performance.md). kr-cuda-bench --prefill-short-max-keys N
  // (0: off) and --prefill-short-variant N, to compare.
  int flash_prefill_short_variant = 5;
  int flash_prefill_short_max_keys = 2048;
  // The kernel of those short decode steps (head dims 64/128/256, GQA groups 1-8;
  // other shapes take the paged kernel): kPaged, the paged kernel (shared-memory
  // float tiles, splits merged through global memory), or kCluster, the
  // short-context decode kernel (cuda_decode_attention.h: a thread-block cluster per
  // (token, kv head), warps on keys, merged through distributed shared memory).
  // Either runs whatever flash_attention says. kr-cuda-bench --short-decode-attn.
  enum class ShortDecodeAttention { kPaged, kCluster };
  ShortDecodeAttention short_decode_attention = ShortDecodeAttention::kCluster;  // faster: docs/performance.md
  // With pdl, the kCluster kernel is launched with PDL too (it loads the metadata
  // and the older keys before waiting on the kernel before it). kr-cuda-bench
  // --no-pdl-attn turns that alone off.
  bool pdl_short_decode = true;
  // Backend::decode_stack at steps of one token as ONE persistent kernel
  // (cuda_decode_stack.h: every layer's norms, qkv, RoPE and KV store, attention,
  // o_proj, MLP) for Llama-style models whose Linears are 4-bit with groups of 64 or
  // 128 columns (head dim 128, bf16 KV cache, block tables of up to 512 keys), instead of
  // ~7 kernels a layer. It keeps a second copy of those weights in the kernel's read
  // order (1.5 GB for Llama-3.2-3B), made at load
  // (Backend::prepare_decode_stack); its split-K sums are added atomically, so
  // batch-1 logits are not bit-for-bit repeatable run to run. kr-serve
  // --decode-stack-kernel, kr-cuda-bench and kr-backend-ops --decode-stack.
  bool decode_stack_kernel = false;
  // Its tuning (cuda_decode_stack.h, DecodeStackArgs): ring units a streaming warp (2-6,
  // as shared memory allows: a model whose ring does not fit runs the kernels a layer;
  // 0, the default: cuda::stack_auto_ring_depth), or with decode_stack_row_ring the rows of
  // the CTA's ring (2-8; 0: as many as shared memory holds), and the per-phase timestamps of
  // every launch (read by cuda_decode_stack_trace; kr-cuda-bench --decode-stack-trace).
  // kr-cuda-bench and kr-backend-ops --decode-stack-ring-depth. decode_stack_row_ring: one
  // ring a CTA filled by warp 0 with bulk copies whatever phase the others are in, at most
  // decode_stack_rows_in_flight rows requested at a time (DecodeStackArgs::row_ring), or
  // decode_stack_window_rows_in_flight between matrices (-1: the same),
  // --decode-stack-row-ring, --decode-stack-rows-in-flight, --decode-stack-window-rows-in-flight. decode_stack_cta_attention: its attention a kv head a
  // CTA, merged in shared memory (DecodeStackArgs::cta_attention; at most 4 q heads a
  // kv head, 64-column groups: cuda::stack_cta_attention_fits), --decode-stack-cta-attention. decode_stack_flags: three of its five grid
  // barriers a layer replaced by counters that only each phase's consumers wait on
  // (DecodeStackArgs::flags), --decode-stack-flags.
  int decode_stack_ring_depth = 0;  // 0: cuda::stack_auto_ring_depth (4 units where they fit)
  bool decode_stack_row_ring = false;
  int decode_stack_rows_in_flight = 2;
  int decode_stack_window_rows_in_flight = -1;
  // The attention's splits merged by every CTA as it stages o_proj's input (the default:
  // +6% at batch 1 on an H100, session 24) instead of by each kv head's last split
  // (DecodeStackArgs::stage_merge); false: kr-cuda-bench and kr-backend-ops
  // --decode-stack-item-merge.
  bool decode_stack_stage_merge = true;
  // Its attention's keys on the tensor cores (DecodeStackArgs::mma_keys); false: kr-cuda-bench
  // and kr-backend-ops --decode-stack-cuda-core-keys.
  bool decode_stack_mma_keys = true;
  bool decode_stack_trace = false;
  bool decode_stack_cta_attention = false;
  bool decode_stack_flags = false;
  // o_proj's input merged by each streaming warp for its own units instead of by every CTA
  // for all heads (DecodeStackArgs::warp_merge; the barrier form without the CTA attention):
  // kr-cuda-bench and kr-backend-ops --decode-stack-warp-merge. Not measured yet (session 25).
  bool decode_stack_warp_merge = false;
  // Warp 0 of each CTA streams weight units too, beside the attention (DecodeStackArgs::
  // warp0_streams: 16 streaming warps a CTA instead of 15; not with the row ring); the images are
  // built at load for it. kr-cuda-bench and kr-backend-ops --decode-stack-warp0-streams. No
  // faster than 15 warps (H100, session 30: the SM's units are the same work however spread).
  bool decode_stack_warp0_streams = false;
  // gate_up, its GLU and down_proj within clusters of two CTAs, without the grid barrier
  // between them (DecodeStackArgs::cluster_mlp; not with the row ring or the flags form; where
  // stack_cluster_mlp_fits the model and the grid, and its clusters all fit the device at once:
  // Llama-3.2-3B on 132 SMs, not 8B). The images of gate_up and down_proj are built at load in
  // its order. On by default since session 39 (3B AWQ batch 1 +1.9-2.2% on an H100); false:
  // kr-cuda-bench and kr-backend-ops --decode-stack-no-cluster-mlp.
  bool decode_stack_cluster_mlp = true;
  // o_proj's and down_proj's units ordered in blocks of columns (a head's for o_proj, 512 for
  // down_proj: stack_o_group_block, stack_down_group_block), so that each CTA merges the
  // attention (or makes the GLU) of only the columns its own units read, instead of all of
  // them: every CTA reading every head's partials and all of gate_up's sums from L2 made those
  // stagings 4.6 us (7.1 at 400 keys) and 2.1 us a layer (H100, session 26). The images are
  // built at load in that order. On by default (faster in every measured shape:
  // docs/performance.md, session 27); false: kr-cuda-bench and kr-backend-ops
  // --decode-stack-global-staging.
  bool decode_stack_local_staging = true;
  // > 0: everything this backend allocates on the device (weights, workspace,
  // the KV cache and a reserve) stays within this many bytes; the KV cache gets
  // what the rest leaves (never more than is free). For several models on one
  // device, each with its share. 0: the KV cache takes memory_fraction of the
  // free memory, as above.
  size_t memory_budget_bytes = 0;
};


// "auto", "mma", "stream", "row", "row-tc": the names of CudaOptions::QuantGemv on command lines
// and in benchmark JSON; parse_quant_gemv is false for anything else.
inline const char* quant_gemv_name(CudaOptions::QuantGemv k) {
  switch (k) {
    case CudaOptions::QuantGemv::kAuto: return "auto";
    case CudaOptions::QuantGemv::kMma: return "mma";
    case CudaOptions::QuantGemv::kStream: return "stream";
    case CudaOptions::QuantGemv::kRow: return "row";
    case CudaOptions::QuantGemv::kRowTc: return "row-tc";
  }
  return "?";
}
inline bool parse_quant_gemv(const std::string& name, CudaOptions::QuantGemv* out) {
  for (auto k : {CudaOptions::QuantGemv::kAuto, CudaOptions::QuantGemv::kMma, CudaOptions::QuantGemv::kStream,
                 CudaOptions::QuantGemv::kRow, CudaOptions::QuantGemv::kRowTc})
    if (name == quant_gemv_name(k)) {
      *out = k;
      return true;
    }
  return false;
}

// "v1", "v2", "wgmma": the names of CudaOptions::QuantGemm on command lines and in
// benchmark JSON; parse_quant_gemm is false for anything else.
inline const char* quant_gemm_name(CudaOptions::QuantGemm k) {
  return k == CudaOptions::QuantGemm::kWgmma ? "wgmma" : k == CudaOptions::QuantGemm::kV2 ? "v2" : "v1";
}
inline bool parse_quant_gemm(const std::string& name, CudaOptions::QuantGemm* out) {
  for (auto k : {CudaOptions::QuantGemm::kV1, CudaOptions::QuantGemm::kV2, CudaOptions::QuantGemm::kWgmma})
    if (name == quant_gemm_name(k)) {
      *out = k;
      return true;
    }
  return false;
}

// True when the CUDA runtime finds at least one usable device.
bool cuda_device_available();
// Free and total bytes of `device` now; false without a usable device.
bool cuda_device_memory(int device, size_t* free_bytes, size_t* total_bytes);

// Creates the backend on options.device. Returns nullptr when no device is usable.
std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options);

// The decode stack kernel's trace of its last launch (CudaOptions::decode_stack_trace):
// the globaltimer (ns) at each cuda::StackTracePoint (cuda_decode_stack.h),
// [layers][ctas][kStackTracePoints]. Synchronizes b's stream. False (ns untouched)
// when b is not a CUDA backend, the option is off or no model was prepared for the
// kernel. For benchmarks.
bool cuda_decode_stack_trace(Backend& b, std::vector<uint64_t>* ns, int* layers, int* ctas);
// How many times b launched the decode stack kernel (recorded into a step graph
// counts once); -1 when b is not a CUDA backend. For checks.
int64_t cuda_decode_stack_launches(Backend& b);
// The ring depth (units a streaming warp) of b's last decode stack launch, as the
// option resolved it (CudaOptions::decode_stack_ring_depth 0: stack_auto_ring_depth);
// 0 when b launched none or is not a CUDA backend. For benchmarks' records.
int cuda_decode_stack_ring_depth(Backend& b);

}  // namespace kr
