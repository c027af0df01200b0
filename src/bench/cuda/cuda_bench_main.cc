// kr-cuda-bench: throughput of a model on the CUDA backend, no HTTP, no
// tokenizer: load time, device memory, prefill (one sequence of N tokens),
// batch-1 decode at contexts 128, 4096 and 32768 (with the bytes one token reads
// and the fraction of the 3.9 TB/s roofline that makes), batch-16 decode at
// 32768 (the split attention filling the GPU; its roofline too), batched decode. Decode steps run
// as step graphs (one per batch size) and sample greedily on the device, as a
// server step would: each step launched before the step before's ids are read,
// its ids fed on the device (the engine's overlapped decode; --no-overlap: read
// first). Also dumps logits for comparison with Hugging Face.
//
// With --quant FORMAT the decoder layers' Linears are random quantized weights of
// that format (model/quant/dummy_quant.h: awq, gptq, gptq8, mlx4, mlx8, fp8,
// fp8-static; embedding and lm_head stay bf16), and the bytes one batch-1 decode
// step reads count their codes, scales and zeros.
//
// Usage: kr-cuda-bench [--model DIR | --arch NAME[,NAME...]] [--quant FORMAT] [--json FILE] [--json-dir DIR]
//                      [--no-graphs] [--no-overlap] [--no-pdl] [--no-pdl-norms] [--no-pdl-after-late-signal] [--no-pdl-flash-decode] [--no-flash] [--flash-decode-min-keys N] [--flash-decode-warps 0|2|4] [--quant-dense-min N] [--quant8-dense-min N] [--w8a8-min N]
//                      [--no-fused-act-quant]   (W8A8 matmuls quantize their own activations:
//                                        CudaOptions::fuse_fp8_act_quant off, to compare)
//                      [--no-fp8-rope-epilogue] (W8A8 qkv: the rope kernel after the GEMM:
//                                        CudaOptions::fp8_qkv_rope_epilogue off, to compare)
//                      [--no-fp8-attention-out] (W8A8 o_proj quantizes attention's output itself:
//                                        CudaOptions::fp8_attention_out off, to compare)
//                      [--qgemv auto|mma|stream|row|row-tc] [--qgemv-split N] (quantized Linears of <= 8 rows: their kernel,
//                                        CudaOptions::quant_gemv, default auto;
//                                        the stream kernel's K slices forced to N, CudaOptions::quant_gemv_split)
//                      [--qgemm-batched v1|v2|wgmma] (quantized Linears of 9..255 rows: their kernel,
//                                        CudaOptions::quant_gemm, default wgmma)
//                      [--short-decode-attn paged|cluster] [--no-pdl-attn]   (CudaOptions::short_decode_attention,
//                                        pdl_short_decode: the kernel of decode steps of <= 4 short sequences)
//                      [--decode-only]   (batch-1 decode only; the JSON holds what ran)
//                      [--decode-stack]  (one-token steps: every decoder layer as one persistent
//                                        kernel, CudaOptions::decode_stack_kernel)
//                      [--decode-stack-ring-depth N]   (its ring units a warp, or rows of the row
//                                        ring: decode_stack_ring_depth)
//                      [--decode-stack-row-ring] [--decode-stack-rows-in-flight N]   (one ring a CTA
//                      [--decode-stack-window-rows-in-flight N]  filled by warp 0: decode_stack_row_ring,
//                                        _rows_in_flight, _window_rows_in_flight)
//                      [--decode-stack-cta-attention]   (its attention a kv head a CTA:
//                                        decode_stack_cta_attention)
//                      [--decode-stack-item-merge]   (the attention's splits merged by each kv head's
//                                        last split: decode_stack_stage_merge false)
//                      [--decode-stack-cuda-core-keys]   (its attention's keys a key a lane, not on the
//                                        tensor cores: decode_stack_mma_keys false)
//                      [--decode-stack-flags]   (its barriers after qkv, the attention and gate_up as
//                                        counters: decode_stack_flags)
//                      [--decode-stack-warp-merge]   (o_proj's input merged by each warp for its own
//                                        units: decode_stack_warp_merge)
//                      [--decode-stack-warp0-streams]   (warp 0 streams weight units too, 16 warps a
//                                        CTA: decode_stack_warp0_streams)
//                      [--decode-stack-no-cluster-mlp]  (gate_up, GLU and down_proj at grid barriers instead
//                                                    of in clusters of two CTAs: decode_stack_cluster_mlp false)
//                      [--decode-stack-global-staging]  (every CTA staging all of o_proj's and down_proj's
//                                        input, pair-major units: decode_stack_local_staging false)
//                      [--decode-stack-trace]   (its per-phase timestamps: after each batch-1 decode run,
//                                        the last step's critical path a layer, stack_trace_summary.h)
//                      [--kv-cache-dtype auto|bf16|fp8]   (ModelOptions::kv_cache_dtype: fp8 = e4m3 KV, twice the blocks)
//                      [--decode-at B:CTX[:STEPS][,...]]  (also batch-B decode at context CTX, after the batch-1 ones)
//                      [--brief]         (batch-1 decode at ctx 128, pp512, batch-64 decode)
//                      [--profile-decode N] [--profile-batch B]  (only N decode steps of B sequences
//                                        (default 1) at ctx 128, between cudaProfilerStart/Stop:
//                                        ncu --profile-from-start off)
//                      [--profile-prefill N]  (only one N-token prefill between them)
//        NAME: a preset of model_config_preset_names() (llama-3.2-3b, llama-3.1-8b, qwen3-8b,
//        qwen2.5-7b, mistral-7b-v0.3, gemma-3-4b) with random bf16 (or --quant) weights of its shape, or
//        "all"; several run one after another in one process (a fresh backend each, so that
//        nothing of one stays on the device for the next) and a summary table ends the output. --json FILE: one
//        model's results; --json-dir DIR: DIR/NAME.json per preset.
//        kr-cuda-bench --gemv-bench [--quant FORMAT] [--arch NAME]   (batch-1 GEMV bandwidth per matrix
//        shape: bf16 of every preset, or quantized of NAME's shapes at T = 1 and 8, on each T <= 8 kernel
//        (mma, stream) and on the stream kernel with 1, 2, 4 and 8 K slices forced)
//        kr-cuda-bench --qgemm-bench [--quant FORMAT] [--arch NAME]   (NAME's quantized shapes, default
//        awq, at T = 16, 32, 64, 128 and 200 on each T > 8 kernel (v1, v2) and as bf16 through cuBLAS)
//        kr-cuda-bench --fp8-gemm-bench [--arch NAME]   (the W8A8 GEMM of FP8 weights, NAME's shapes,
//        default llama-3.1-8b, at T = 16, 32, 64: the small-T kernel of cuda_fp8_gemm_small.h, the
//        wgmma kernel of cuda_fp8_gemm_wgmma.h and cuBLASLt's; each matmul includes its activation
//        quantize kernel, the same on all)
//        [--fp8-small-gemm N]   (CudaOptions::fp8_small_gemm_max_tokens: W8A8 matmuls of <= N rows
//                                on the small-T GEMM, default 0 (never), at most 64)
//        [--fp8-wgmma-gemm N]   (CudaOptions::fp8_wgmma_gemm_max_tokens: W8A8 matmuls of more rows
//                                and <= N on the wgmma GEMM, default 64; 0: never; both 0: cuBLASLt)
//        [--fp8-gemm-split S]   (CudaOptions::fp8_small_gemm_split: both decode-size FP8 GEMMs with
//                                S K slices forced; 0: their own choice)
//        kr-cuda-bench --model DIR --dump-logits IDS.txt OUT.f32   (prefill, all rows, f32 [T, V])
//        kr-cuda-bench --attn-bench [--variants N[,N...]] [--rounds N] [--json FILE]   (the prefill
//                      attention alone, 3B shape, chunks against long cached contexts, per flash
//                      prefill variant, each checked against variant 0: attn_bench.h)
//        kr-cuda-bench --launch-bench [--json FILE]   (one kernel boundary inside a replayed graph,
//                      with and without PDL, at 1 / SMs / 4 x SMs blocks; the greedy step's argmax
//                      after a graph or inside it: launch_bench.h)
//        kr-cuda-bench --persistent-gemv-bench [--layers N] [--json FILE]   (the 4-bit GEMVs of a
//                      3B batch-1 step as one persistent kernel vs one kernel a matrix: persistent_gemv_bench.h)
//        kr-cuda-bench --mega-gemv-bench [--layers N] [--json FILE]   (the same chain as one persistent
//                      kernel of the serving GEMV's layout and arithmetic vs the serving kernels: mega_gemv_bench.h)
//        --prefill-variant N: CudaOptions::flash_prefill_variant for the model runs (default 1);
//        --prefill-short-variant N, --prefill-short-max-keys N: flash_prefill_short_variant and
//                      flash_prefill_short_max_keys (defaults 5 and 2048; 0 keys: variant N everywhere)
#include <cuda_profiler_api.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_fp8_gemm_wgmma.h"
#include "backend/cuda/cuda_kernels.h"
#include "bench/cuda/attn_bench.h"
#include "bench/cuda/launch_bench.h"
#include "bench/cuda/mega_gemv_bench.h"
#include "bench/cuda/persistent_gemv_bench.h"
#include "bench/cuda/stack_trace_summary.h"
#include "model/hf_config.h"
#include "model/model.h"
#include "model/quant/dummy_quant.h"

namespace kr {
namespace {

// HBM bandwidth the rooflines assume (a device-to-device copy moved about 4.3 TB/s
// counting reads and writes; 3.9 TB/s is what streaming reads reach here).
constexpr double kHbmBytesPerS = 3.9e12;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// B sequences, each with `ctx` tokens in the cache after this step (ctx - fresh old ones).
// Sequence s owns blocks [s * width, (s + 1) * width).
StepMetadata make_step(int B, int fresh, int ctx, int bs, int width) {
  StepMetadata m;
  m.num_seqs = B;
  m.block_size = bs;
  m.max_blocks_per_seq = width;
  m.max_context_len = ctx;
  m.query_start.push_back(0);
  for (int s = 0; s < B; ++s) {
    for (int i = 0; i < fresh; ++i) {
      const int pos = ctx - fresh + i;
      m.positions.push_back(pos);
      m.slot_mapping.push_back((s * width + pos / bs) * bs + pos % bs);
    }
    m.query_start.push_back(m.query_start.back() + fresh);
    m.context_lens.push_back(ctx);
    for (int b = 0; b < width; ++b) m.block_tables.push_back(s * width + b);
  }
  m.num_tokens = B * fresh;
  return m;
}

struct Bench {
  Backend& gpu;
  Model& model;
  bool graphs = true;
  // Greedy decode as the engine runs it by default (EngineConfig::overlap_decode):
  // step t + 1 is launched, its ids fed from step t's argmax on the device
  // (Model::forward's fed_ids), before step t's ids are read.
  bool overlap = true;

  // One decode step's forward as the runner issues it (ForwardRunner::forward's graph key).
  StatusOr<Tensor> decode_forward(const StepMetadata& m, const std::vector<int32_t>& ids,
                                  const std::vector<int32_t>& rows, uint64_t key, bool use_graphs, bool fed) {
    const bool g = use_graphs && gpu.begin_graph(key | (fed ? uint64_t{1} << 62 : 0));
    auto l = model.forward(m, ids, rows, fed);
    if (g) gpu.end_graph();
    return l;
  }

  // Prefill of one sequence of n tokens; returns tokens/s (best of reps).
  double prefill(int n, int reps) {
    const int bs = model.block_size();
    const StepMetadata m = make_step(1, n, n, bs, (n + bs - 1) / bs);
    std::vector<int32_t> ids(n);
    for (int i = 0; i < n; ++i) ids[i] = (i * 7919 + 13) % model.config().vocab_size;
    const std::vector<int32_t> rows = {n - 1};
    double best = 1e30;
    for (int r = 0; r < reps + 1; ++r) {
      gpu.synchronize();
      const double t0 = now_s();
      auto l = model.forward(m, ids, rows);
      KR_CHECK(l.ok());
      gpu.synchronize();
      if (r > 0) best = std::min(best, now_s() - t0);
    }
    return n / best;
  }

  // Greedy decode of B sequences for `steps` steps, with or without step graphs;
  // returns the ids and logprobs of every step (same inputs both ways).
  // fed: each step after the first takes its ids from the step before's argmax on
  // the device and is launched before that step's ids are read (the overlapped decode).
  std::vector<float> greedy_trace(int B, int ctx0, int steps, bool use_graphs, bool fed = false) {
    const int bs = model.block_size();
    const int width = (ctx0 + steps + bs - 1) / bs;
    std::vector<int32_t> ids(B), rows(B), out_ids(B);
    for (int i = 0; i < B; ++i) ids[i] = 1000 + 17 * i, rows[i] = i;
    std::vector<float> lps(B), trace;
    auto take = [&] {
      for (int s = 0; s < B; ++s) {
        ids[s] = out_ids[s];
        trace.push_back(static_cast<float>(out_ids[s]));
        trace.push_back(lps[s]);
      }
    };
    int64_t unread = 0;
    for (int i = 0; i < steps; ++i) {
      const StepMetadata m = make_step(B, 1, ctx0 + i, bs, width);
      auto l = decode_forward(m, ids, rows, (uint64_t{1} << 63) | static_cast<uint64_t>(B), use_graphs, fed && i > 0);
      KR_CHECK(l.ok());
      if (!fed) {
        KR_CHECK(gpu.argmax_logprob(*l, out_ids.data(), lps.data()));
        take();
        continue;
      }
      const int64_t ticket = gpu.launch_argmax(*l);
      KR_CHECK(ticket > 0);
      if (unread > 0) {
        gpu.read_argmax(unread, out_ids.data(), lps.data());
        take();
      }
      unread = ticket;
    }
    if (unread > 0) {
      gpu.read_argmax(unread, out_ids.data(), lps.data());
      take();
    }
    return trace;
  }

  // `steps` decode steps of B sequences starting at context ctx0; greedy ids back to the host each step.
  // sample = false: graph launches only (no argmax, no read of ids), to separate the
  // GPU time of a step from the host round trip.
  double decode(int B, int ctx0, int steps, bool sample = true) {
    const int bs = model.block_size();
    const int width = (ctx0 + steps + 8 + bs - 1) / bs;
    KR_CHECK(static_cast<int64_t>(B) * width <= model.num_kv_blocks());
    std::vector<int32_t> ids(B, 1000), rows(B), out_ids(B);
    std::vector<float> lps(B);
    for (int i = 0; i < B; ++i) rows[i] = i;
    const uint64_t key = (static_cast<uint64_t>(B) << 32) | static_cast<uint32_t>(width);
    double t0 = 0.0;
    int64_t unread = 0;  // overlap: the launched argmax whose ids are not read yet
    for (int i = -3; i < steps; ++i) {  // 3 warm-up steps record the graphs
      if (i == 0) {
        gpu.synchronize();
        t0 = now_s();
      }
      const StepMetadata m = make_step(B, 1, ctx0 + 3 + i, bs, width);
      const bool fed = overlap && sample && unread > 0;
      auto l = decode_forward(m, ids, rows, key, graphs, fed);
      KR_CHECK(l.ok());
      if (!sample && i >= 0) continue;
      if (!overlap) {
        KR_CHECK(gpu.argmax_logprob(*l, out_ids.data(), lps.data()));
        for (int s = 0; s < B; ++s) ids[s] = out_ids[s];
        continue;
      }
      const int64_t ticket = gpu.launch_argmax(*l);
      KR_CHECK(ticket > 0);
      if (unread > 0) gpu.read_argmax(unread, out_ids.data(), lps.data());  // while this step runs
      unread = ticket;
    }
    if (unread > 0) gpu.read_argmax(unread, out_ids.data(), lps.data());
    gpu.synchronize();
    return static_cast<double>(B) * steps / (now_s() - t0);
  }
};

// Batch-1 GEMV (split-K, cuda_gemv1.h) bandwidth per matrix shape [N x K] of every
// preset (qkv, o_proj, gate_up, down, lm_head; duplicates once), weights rotated
// through 2 GB so that L2 holds none of them. Launched without PDL, so that each
// GEMV is timed alone (launch and ramp included: a lower bound on its bandwidth
// inside a step).
void gemv_bench() {
  const size_t pool_bytes = size_t{2} << 30;
  void* pool = nullptr;
  void* x = nullptr;
  void* out = nullptr;
  KR_CHECK(cudaMalloc(&pool, pool_bytes) == cudaSuccess && cudaMalloc(&x, 1 << 20) == cudaSuccess &&
           cudaMalloc(&out, 1 << 20) == cudaSuccess);
  KR_CHECK(cudaMemset(pool, 0, pool_bytes) == cudaSuccess && cudaMemset(x, 0, 1 << 20) == cudaSuccess);
  cudaEvent_t e0, e1;
  KR_CHECK(cudaEventCreate(&e0) == cudaSuccess && cudaEventCreate(&e1) == cudaSuccess);
  std::vector<std::array<int, 2>> shapes;
  for (const std::string& name : model_config_preset_names()) {
    auto c = model_config_preset(name);
    KR_CHECK(c.ok());
    const int H = c->hidden_size, D = c->head_dim, Hq = c->num_attention_heads, Hkv = c->num_key_value_heads;
    for (const std::array<int, 2> sh : {std::array<int, 2>{(Hq + 2 * Hkv) * D, H}, {H, Hq * D},
                                        {2 * c->intermediate_size, H}, {H, c->intermediate_size},
                                        {c->vocab_size, H}})
      if (std::find(shapes.begin(), shapes.end(), sh) == shapes.end()) shapes.push_back(sh);
  }
  for (const auto& sh : shapes) {
    const size_t mat = static_cast<size_t>(sh[0]) * sh[1] * 2;
    const int copies = static_cast<int>(pool_bytes / mat);
    const int reps = 40;
    KR_CHECK(cudaEventRecord(e0, nullptr) == cudaSuccess);
    for (int i = 0; i < reps; ++i)
      cuda::launch_gemv(x, static_cast<char*>(pool) + (i % copies) * mat, out, false, 1, sh[0], sh[1], false, nullptr);
    KR_CHECK(cudaEventRecord(e1, nullptr) == cudaSuccess && cudaEventSynchronize(e1) == cudaSuccess);
    float ms = 0;
    KR_CHECK(cudaEventElapsedTime(&ms, e0, e1) == cudaSuccess);
    std::printf("gemv split-K N %-6d K %-5d %7.2f us %7.0f GB/s\n", sh[0], sh[1], 1000.0 * ms / reps,
                static_cast<double>(mat) * reps / (ms * 1e-3) / 1e9);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(pool);
  cudaFree(x);
  cudaFree(out);
}

// The same for quantized weights of `format` at each T of `Ts` (batch 1 and 8 for
// the T <= 8 kernels; 16..200 for the T > 8 ones), through the backend's matmul
// recorded in a step graph (so launch overhead is not timed), copies rotated
// through ~400 MB (8x the L2) so that L2 holds none of them; per shape and T, once
// on each of `paths` (label, backend), e.g. the T <= 8 kernels
// (CudaOptions::quant_gemv, quant_gemv_split) or the T > 8 ones
// (CudaOptions::quant_gemm); with bf16_reference, also the bf16 weight of the
// shape on the first backend (cuBLAS), as the line labelled "bf16".
// A layer's four Linear shapes {N, K}: qkv, o_proj, gate_up, down.
std::array<std::array<int64_t, 2>, 4> linear_shapes(const ModelConfig& c) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, D = c.head_dim;
  const int64_t qkv = (c.num_attention_heads + 2 * c.num_key_value_heads) * D;
  return {{{qkv, H}, {H, c.num_attention_heads * D}, {2 * I, H}, {H, I}}};
}

void quant_gemv_bench(const std::vector<std::pair<const char*, Backend*>>& paths, const std::string& format,
                      const ModelConfig& c, const std::vector<int>& Ts, bool bf16_reference) {
  uint64_t key = 0x6e6d0000;
  for (const auto& sh : linear_shapes(c)) {
    auto m = make_dummy_quantized(format, sh[0], sh[1], 99, "bench");
    KR_CHECK_MSG(m.ok(), m.status().to_string().c_str());
    // Per backend (kept: there is no free); the bf16 copies last, on the first backend.
    std::vector<std::vector<LinearWeight>> copies(paths.size() + (bf16_reference ? 1 : 0));
    for (size_t p = 0; p < paths.size(); ++p) {
      auto w0 = paths[p].second->upload_quantized(*m);
      KR_CHECK(w0.ok());
      const int n_copies = static_cast<int>(std::clamp<double>(4e8 / static_cast<double>(w0->bytes()), 2, 64));
      copies[p].push_back(*w0);
      for (int i = 1; i < n_copies; ++i) copies[p].push_back(*paths[p].second->upload_quantized(*m));
    }
    if (bf16_reference) {
      const int n_copies = static_cast<int>(std::clamp<double>(4e8 / (sh[0] * sh[1] * 2.0), 2, 64));
      for (int i = 0; i < n_copies; ++i) {
        Tensor t = paths[0].second->alloc(DType::kBF16, {sh[0], sh[1]});
        paths[0].second->fill_zero(t);
        copies.back().emplace_back(t);
      }
    }
    for (int T : Ts) {
      ++key;
      for (size_t p = 0; p < copies.size(); ++p) {
        const bool dense = p == paths.size();
        Backend& gpu = *paths[dense ? 0 : p].second;
        const char* label = dense ? "bf16" : paths[p].first;
        const std::vector<LinearWeight>& ws = copies[p];
        Tensor x = gpu.alloc(DType::kBF16, {T, sh[1]}), out = gpu.alloc(DType::kBF16, {T, sh[0]});
        gpu.fill_zero(x);
        const int reps = 200;
        for (int round = 0; round < 3; ++round) {  // record, then two timed replays
          gpu.synchronize();
          const double t0 = now_s();
          KR_CHECK(gpu.begin_graph(key + (dense ? 0x1000 : 0)));
          if (!gpu.replaying_graph())
            for (int r = 0; r < reps; ++r) gpu.matmul(x, ws[r % ws.size()], out);
          gpu.end_graph();
          gpu.synchronize();
          const double us = (now_s() - t0) * 1e6 / reps;
          if (round == 2)
            std::printf("qgemv %-10s %-9s T %-3d N %-6lld K %-6lld %7.2f us %7.0f GB/s %6.1f TFLOP/s  (%s)\n",
                        format.c_str(), label, T, static_cast<long long>(sh[0]), static_cast<long long>(sh[1]), us,
                        static_cast<double>(ws[0].bytes()) / (us * 1e-6) / 1e9,
                        2.0 * T * sh[0] * sh[1] / (us * 1e-6) / 1e12, dense ? "bf16" : ws[0].quant_desc.c_str());
        }
        gpu.free(x);
        gpu.free(out);
      }
    }
  }
}

// HBM bytes one batch-1 decode step reads at context `ctx`: every weight once
// (codes, scales and zeros for quantized ones), except the embedding table, of
// which one row (a tied table is read whole as the lm_head), plus the K and V
// rows of the context in each layer (a sliding layer only its window's).
double decode_bytes_per_token(const Model& model, int ctx) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  double bytes = static_cast<double>(w.lm_head.bytes()) + static_cast<double>(w.final_norm.bytes()) +
                 static_cast<double>(c.hidden_size) * 2.0;
  for (const LayerWeights& l : w.layers) {
    for (const LinearWeight* m : {&l.qkv, &l.o, &l.gate_up, &l.down}) bytes += static_cast<double>(m->bytes());
    for (const Tensor* t : {&l.input_norm, &l.qkv_bias, &l.q_norm, &l.k_norm, &l.attn_out_norm, &l.mlp_norm,
                            &l.mlp_out_norm})
      if (!t->empty()) bytes += static_cast<double>(t->bytes());
  }
  // K and V: bf16, or one byte each in an FP8 cache.
  const double kv_elem = model.kv_layers().empty() ? 2.0 : static_cast<double>(dtype_size_bytes(model.kv_layers()[0].k.dtype));
  const double kv_row = 2.0 * c.num_key_value_heads * c.head_dim * kv_elem;
  for (AttentionKind k : c.arch.layer_attention) {
    const int keys = k == AttentionKind::kSliding ? std::min(ctx, c.arch.sliding_window) : ctx;
    bytes += kv_row * keys;
  }
  return bytes;
}

int dump_logits(Backend& gpu, Model& model, const std::string& ids_path, const std::string& out_path) {
  std::ifstream in(ids_path);
  std::vector<int32_t> ids;
  for (int32_t v; in >> v;) ids.push_back(v);
  const int T = static_cast<int>(ids.size());
  const int bs = model.block_size();
  if (T == 0 || T > model.max_logit_rows()) {
    std::fprintf(stderr, "dump-logits: need 1..%d ids\n", model.max_logit_rows());
    return 1;
  }
  const StepMetadata m = make_step(1, T, T, bs, (T + bs - 1) / bs);
  std::vector<int32_t> rows(T);
  for (int i = 0; i < T; ++i) rows[i] = i;
  auto l = model.forward(m, ids, rows);
  if (!l.ok()) {
    std::fprintf(stderr, "forward: %s\n", l.status().to_string().c_str());
    return 1;
  }
  std::vector<float> host(l->numel());
  gpu.copy_to_host(host.data(), *l, host.size() * 4);
  std::ofstream out(out_path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(host.data()), static_cast<std::streamsize>(host.size() * 4));
  std::printf("dumped logits [%d, %d] to %s\n", T, model.config().vocab_size, out_path.c_str());
  return 0;
}

// What one run measures (the flags).
struct RunSettings {
  bool graphs = true, decode_only = false, brief = false, pdl = true, pdl_norms = true;
  bool overlap = true;  // --no-overlap: read each step's ids before launching the next
  int profile_decode_steps = 0;  // --profile-decode N: only N decode steps inside cudaProfilerStart/Stop
  int profile_batch = 1;         // --profile-batch B: of B sequences (context 128)
  int profile_prefill = 0;       // --profile-prefill N: one prefill of N tokens instead
  std::string quant;  // --quant FORMAT: dummy quantized Linears; empty: bf16
  KvCacheDType kv_cache_dtype = KvCacheDType::kAuto;  // --kv-cache-dtype
  // --decode-at B:CTX[:STEPS],...: batch-B decode at context CTX (STEPS steps, default 32)
  // after the batch-1 decodes (e.g. 256:4000 for the FP8 KV cache's batch-256 target).
  std::vector<std::array<int, 3>> decode_at;
  CudaOptions options;  // what the backend was made with (recorded in the JSON)
};

// Loads `arch` (dummy weights) or `model_dir` on gpu, runs every measurement and
// returns the results (empty on a load failure, reported). The model is freed on return.
nlohmann::json run_model(Backend& gpu, const std::string& model_dir, const std::string& arch,
                         const RunSettings& set, const std::string& dump_ids, const std::string& dump_out,
                         int* exit_code) {
  size_t free0 = 0, total = 0;
  cudaMemGetInfo(&free0, &total);
  ModelOptions opt;
  opt.arch = arch;
  opt.dummy_weights = model_dir.empty();
  opt.dummy_quant = set.quant;
  opt.kv_cache_dtype = set.kv_cache_dtype;
  const double t0 = now_s();
  auto model_or = load_model(model_dir, gpu, opt);
  if (!model_or.ok()) {
    std::fprintf(stderr, "load: %s\n", model_or.status().to_string().c_str());
    *exit_code = 1;
    return {};
  }
  gpu.synchronize();
  const double load_s = now_s() - t0;
  Model& model = **model_or;
  if (!dump_ids.empty()) {
    *exit_code = dump_logits(gpu, model, dump_ids, dump_out);
    return {};
  }
  size_t free1 = 0;
  cudaMemGetInfo(&free1, &total);
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);

  nlohmann::json r;
  r["gpu"] = prop.name;
  const std::string& quant = set.quant;
  r["model"] = model_dir.empty() ? arch + (quant.empty() ? " (dummy bf16 weights)" : " (dummy " + quant + " weights)")
                                 : model_dir;
  r["quant"] = quant.empty() ? "none" : quant;
  if (!model.weights().layers.empty() && model.weights().layers[0].qkv.quantized())
    r["quant_desc"] = model.weights().layers[0].qkv.quant_desc;
  r["quant_dense_min_tokens"] = set.options.quant_dense_min_tokens;
  r["quant8_dense_min_tokens"] = set.options.quant8_dense_min_tokens;
  r["fp8_w8a8_min_tokens"] = set.options.fp8_w8a8_min_tokens;
  r["fp8_small_gemm_max_tokens"] = set.options.fp8_small_gemm_max_tokens;
  r["fp8_wgmma_gemm_max_tokens"] = set.options.fp8_wgmma_gemm_max_tokens;
  r["fuse_fp8_act_quant"] = set.options.fuse_fp8_act_quant;
  r["fp8_qkv_rope_epilogue"] = set.options.fp8_qkv_rope_epilogue;
  r["fp8_attention_out"] = set.options.fp8_attention_out;
  r["load_s"] = load_s;
  r["weight_bytes"] = model.weight_bytes();
  r["kv_cache_bytes"] = model.kv_cache_bytes();
  r["kv_cache_dtype"] = kv_cache_dtype_name(model.kv_cache_dtype());
  r["kv_cache_blocks"] = model.num_kv_blocks();
  r["device_memory_used_bytes"] = free0 - free1;
  r["graphs"] = set.graphs;
  r["decode_overlap"] = set.overlap;
  r["pdl"] = set.pdl;
  r["pdl_norms"] = set.pdl && set.pdl_norms;
  r["pdl_after_late_signal"] = set.pdl && set.options.pdl_after_late_signal;
  r["flash_attention"] = set.options.flash_attention;
  r["flash_prefill_variant"] = set.options.flash_prefill_variant;
  r["flash_prefill_short_variant"] = set.options.flash_prefill_short_variant;
  r["flash_prefill_short_max_keys"] = set.options.flash_prefill_short_max_keys;
  r["flash_decode_min_keys"] = set.options.flash_decode_min_keys;
  r["flash_decode_warps"] = set.options.flash_decode_warps;
  r["pdl_flash_decode"] = set.options.pdl_flash_decode;
  r["decode_stack_kernel"] = set.options.decode_stack_kernel;
  r["decode_stack_ring_depth"] = set.options.decode_stack_ring_depth;
  r["decode_stack_row_ring"] = set.options.decode_stack_row_ring;
  r["decode_stack_rows_in_flight"] = set.options.decode_stack_rows_in_flight;
  r["decode_stack_window_rows_in_flight"] = set.options.decode_stack_window_rows_in_flight;
  r["decode_stack_cta_attention"] = set.options.decode_stack_cta_attention;
  r["decode_stack_stage_merge"] = set.options.decode_stack_stage_merge;
  r["decode_stack_mma_keys"] = set.options.decode_stack_mma_keys;
  r["decode_stack_flags"] = set.options.decode_stack_flags;
  r["decode_stack_warp_merge"] = set.options.decode_stack_warp_merge;
  r["decode_stack_warp0_streams"] = set.options.decode_stack_warp0_streams;
  r["decode_stack_cluster_mlp"] = set.options.decode_stack_cluster_mlp;
  r["decode_stack_local_staging"] = set.options.decode_stack_local_staging;
  r["quant_gemv"] = kr::quant_gemv_name(set.options.quant_gemv);
  r["quant_gemv_split"] = set.options.quant_gemv_split;
  r["quant_gemm"] = kr::quant_gemm_name(set.options.quant_gemm);
  r["short_decode_attention"] =
      set.options.short_decode_attention == CudaOptions::ShortDecodeAttention::kCluster ? "cluster" : "paged";
  r["pdl_short_decode"] = set.pdl && set.options.pdl_short_decode;
  std::printf("%s on %s; load %.2f s; weights %.2f GB; KV cache %s %.1f GB (%d blocks of %d tokens); device memory used %.1f GB\n",
              r["model"].get<std::string>().c_str(), prop.name, load_s, model.weight_bytes() / 1e9,
              kv_cache_dtype_name(model.kv_cache_dtype()), model.kv_cache_bytes() / 1e9, model.num_kv_blocks(),
              model.block_size(), (free0 - free1) / 1e9);
  std::fflush(stdout);
  Bench b{gpu, model, set.graphs, set.overlap};
  if (set.profile_prefill > 0) {
    b.prefill(set.profile_prefill, 1);  // warm-up outside the range
    gpu.synchronize();
    cudaProfilerStart();
    b.prefill(set.profile_prefill, 0);
    gpu.synchronize();
    cudaProfilerStop();
    std::printf("profiled one prefill of %d tokens\n", set.profile_prefill);
    return r;
  }
  if (set.profile_decode_steps > 0) {
    // For `ncu --profile-from-start off`: warm up (and record the step graph)
    // outside the range, then time the kernels of N steps at context 128.
    b.decode(set.profile_batch, 128, 4);
    gpu.synchronize();
    cudaProfilerStart();
    b.decode(set.profile_batch, 128, set.profile_decode_steps);
    gpu.synchronize();
    cudaProfilerStop();
    std::printf("profiled %d batch-%d decode steps\n", set.profile_decode_steps, set.profile_batch);
    return r;
  }
  {
    // Step graphs (and PDL inside them) must reproduce the eager steps exactly.
    const std::vector<float> eager = b.greedy_trace(5, 40, 12, false);
    const std::vector<float> replay = b.greedy_trace(5, 40, 12, true);
    const bool same = eager == replay;
    r["graph_replay_equals_eager"] = same;
    std::printf("graph replay check (5 seqs x 12 steps, ids and logprobs): %s\n", same ? "equal" : "DIFFERENT");
    // The overlapped decode's fed steps must give the same ids and logprobs.
    const std::vector<float> fed = b.greedy_trace(5, 40, 12, true, true);
    const std::vector<float> fed_eager = b.greedy_trace(5, 40, 12, false, true);
    r["fed_steps_equal_eager"] = fed == eager && fed_eager == eager;
    std::printf("fed steps check (graphs, eager): %s, %s\n", fed == eager ? "equal" : "DIFFERENT",
                fed_eager == eager ? "equal" : "DIFFERENT");
    if (!same || fed != eager || fed_eager != eager) *exit_code = 1;
  }
  r["arch"] = model.config().arch.architecture;
  // Batch B at context ctx: a step reads the weights once and each sequence's K/V.
  auto decode_at = [&](int B, int ctx, int steps) {
    if (static_cast<int64_t>(B) * ((ctx + steps + 8 + model.block_size() - 1) / model.block_size()) >
        model.num_kv_blocks()) {
      std::printf("decode batch %d ctx %d: the KV cache holds too few blocks, skipped\n", B, ctx);
      return;
    }
    const double tps = b.decode(B, ctx, steps);
    const double weights = decode_bytes_per_token(model, 0);
    const double bytes = weights + B * (decode_bytes_per_token(model, ctx) - weights);  // per step
    const double roofline = B * kHbmBytesPerS / bytes;
    const std::string key = "decode_b" + std::to_string(B) + "_ctx" + std::to_string(ctx);
    r[key + "_tok_s"] = tps;
    r[key + "_bytes_per_step"] = bytes;
    r[key + "_roofline_tok_s"] = roofline;
    r[key + "_roofline_fraction"] = tps / roofline;
    std::printf("decode batch %-2d ctx %-5d %8.1f tok/s; %.3f GB/step; %.0f%% of the %.0f tok/s roofline (3.9 TB/s)\n",
                B, ctx, tps, bytes / 1e9, 100.0 * tps / roofline, roofline);
    std::vector<uint64_t> trace;
    int trace_layers = 0, trace_ctas = 0;
    StackTraceSummary st;
    if (B == 1 && set.options.decode_stack_trace && cuda_decode_stack_trace(gpu, &trace, &trace_layers, &trace_ctas) &&
        summarize_stack_trace(trace, trace_layers, trace_ctas, &st)) {
      nlohmann::json seg;
      std::string line;
      char buf[64];
      for (int k = 0; k < kStackSegments; ++k) {
        seg[stack_segment_name(k)] = st.us[k];
        std::snprintf(buf, sizeof buf, " %s %.2f", stack_segment_name(k), st.us[k]);
        line += buf;
      }
      r[key + "_stack_trace_us"] = {{"layer", st.layer_us}, {"launch", st.launch_us}, {"segments", seg}};
      r[key + "_stack_trace_us"]["flags_form"] = st.flags;
      std::printf("  decode stack kernel%s, the last step: %.1f us a launch, %.2f us a layer (critical path, us):%s\n",
                  st.flags ? " (flags form)" : "", st.launch_us, st.layer_us, line.c_str());
      if (st.attention_layers > 0) {
        nlohmann::json steps;
        line.clear();
        for (int k = 0; k < 4; ++k) {
          steps[stack_attention_step_name(k)] = st.attention_us[k];
          std::snprintf(buf, sizeof buf, " %s %.2f", stack_attention_step_name(k), st.attention_us[k]);
          line += buf;
        }
        r[key + "_stack_trace_us"]["attention_steps"] = steps;
        r[key + "_stack_trace_us"]["attention_layers"] = st.attention_layers;
        std::printf("  its attention's last CTA (%d layers, us):%s\n", st.attention_layers, line.c_str());
      }
      nlohmann::json units;
      line.clear();
      for (int m = 0; m < 4; ++m) {
        std::snprintf(buf, sizeof buf, "%s %s", m > 0 ? ";" : "", stack_unit_matrix_name(m));
        line += buf;
        for (int k = 0; k < 4; ++k) {
          units[stack_unit_matrix_name(m)][stack_unit_step_name(k)] = st.unit_steps_us[m][k];
          std::snprintf(buf, sizeof buf, " %s %.2f", stack_unit_step_name(k), st.unit_steps_us[m][k]);
          line += buf;
        }
      }
      r[key + "_stack_trace_us"]["warp1_steps"] = units;
      std::printf("  warp 1 from each input staged to its CTA's arrival (mean over CTAs, us):%s\n", line.c_str());
    }
    std::fflush(stdout);
  };
  for (int ctx : set.brief ? std::vector<int>{128} : std::vector<int>{128, 4096, 32768}) decode_at(1, ctx, 128);
  // The ring depth the batch-1 steps ran (decode_stack_ring_depth above is the option: 0 = auto).
  if (set.options.decode_stack_kernel) r["decode_stack_ring_depth_used"] = cuda_decode_stack_ring_depth(gpu);
  if (!set.brief) decode_at(16, 32768, 32);
  for (const auto& [B, ctx, steps] : set.decode_at) decode_at(B, ctx, steps);
  {
    const double tps = b.decode(1, 128, 128, false);
    r["decode_b1_ctx128_no_sampling_tok_s"] = tps;
    r["decode_b1_ctx128_no_sampling_roofline_fraction"] = tps / (kHbmBytesPerS / decode_bytes_per_token(model, 128));
    std::printf("decode batch 1 ctx 128   %8.1f tok/s without argmax/read of ids (graph launches only)\n", tps);
    std::fflush(stdout);
  }
  if (!set.decode_only) {
    for (int n : set.brief ? std::vector<int>{512} : std::vector<int>{64, 512, 2048}) {
      const double tps = b.prefill(n, 3);
      r["prefill_pp" + std::to_string(n) + "_tok_s"] = tps;
      std::printf("prefill pp%-5d %10.0f tok/s\n", n, tps);
      std::fflush(stdout);
    }
    for (int B : set.brief ? std::vector<int>{64} : std::vector<int>{16, 64, 256}) {
      const double tps = b.decode(B, 200, 32);
      r["decode_b" + std::to_string(B) + "_ctx200_tok_s"] = tps;
      std::printf("decode batch %-4d ctx 200 %8.0f tok/s\n", B, tps);
      std::fflush(stdout);
    }
  }
  return r;
}

std::vector<std::string> split_names(const std::string& list) {
  std::vector<std::string> out;
  size_t b = 0;
  while (b <= list.size()) {
    const size_t e = std::min(list.find(',', b), list.size());
    if (e > b) out.push_back(list.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

}  // namespace
}  // namespace kr

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string model_dir, arch_list, json_path, json_dir, dump_ids, dump_out;
  bool gemv = false, qgemm = false, attn = false, fp8_gemm = false, launch_chain = false, persistent_gemv = false,
       mega_gemv = false;
  int bench_layers = 28;  // --persistent-gemv-bench
  kr::AttnBenchSettings attn_set;
  kr::RunSettings set;
  kr::CudaOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc) model_dir = argv[++i];
    else if (a == "--arch" && i + 1 < argc) arch_list = argv[++i];
    else if (a == "--quant" && i + 1 < argc) set.quant = argv[++i];
    else if (a == "--kv-cache-dtype" && i + 1 < argc) {
      const auto d = kr::parse_kv_cache_dtype(argv[++i]);
      if (!d) {
        std::fprintf(stderr, "--kv-cache-dtype: expected auto|bf16|fp8, got '%s'\n", argv[i]);
        return 2;
      }
      set.kv_cache_dtype = *d;
    } else if (a == "--decode-at" && i + 1 < argc) {
      for (const std::string& item : kr::split_names(argv[++i])) {
        std::array<int, 3> v = {0, 0, 32};
        if (std::sscanf(item.c_str(), "%d:%d:%d", &v[0], &v[1], &v[2]) < 2 || v[0] < 1 || v[1] < 1 || v[2] < 1) {
          std::fprintf(stderr, "--decode-at: expected B:CTX[:STEPS], got '%s'\n", item.c_str());
          return 2;
        }
        set.decode_at.push_back(v);
      }
    }
    else if (a == "--quant-dense-min" && i + 1 < argc) options.quant_dense_min_tokens = std::atoi(argv[++i]);
    else if (a == "--quant8-dense-min" && i + 1 < argc) options.quant8_dense_min_tokens = std::atoi(argv[++i]);
    else if (a == "--w8a8-min" && i + 1 < argc) options.fp8_w8a8_min_tokens = std::atoi(argv[++i]);
    else if (a == "--no-fused-act-quant") options.fuse_fp8_act_quant = false;
    else if (a == "--no-fp8-rope-epilogue") options.fp8_qkv_rope_epilogue = false;
    else if (a == "--no-fp8-attention-out") options.fp8_attention_out = false;
    else if (a == "--fp8-attention-out") options.fp8_attention_out = true;
    else if (a == "--fp8-small-gemm" && i + 1 < argc) options.fp8_small_gemm_max_tokens = std::atoi(argv[++i]);
    else if (a == "--fp8-wgmma-gemm" && i + 1 < argc) options.fp8_wgmma_gemm_max_tokens = std::atoi(argv[++i]);
    else if (a == "--fp8-gemm-split" && i + 1 < argc) options.fp8_small_gemm_split = std::atoi(argv[++i]);
    else if (a == "--fp8-gemm-bench") fp8_gemm = true;
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a == "--json-dir" && i + 1 < argc) json_dir = argv[++i];
    else if (a == "--no-graphs") set.graphs = false;
    else if (a == "--no-overlap") set.overlap = false;
    else if (a == "--no-pdl") set.pdl = false;
    else if (a == "--no-pdl-norms") set.pdl_norms = false;
    else if (a == "--no-pdl-after-late-signal") options.pdl_after_late_signal = false;
    else if (a == "--no-pdl-flash-decode") options.pdl_flash_decode = false;
    else if (a == "--decode-stack") options.decode_stack_kernel = true;
    else if (a == "--decode-stack-ring-depth" && i + 1 < argc) options.decode_stack_ring_depth = std::atoi(argv[++i]);
    else if (a == "--decode-stack-row-ring") options.decode_stack_row_ring = true;
    else if (a == "--decode-stack-rows-in-flight" && i + 1 < argc)
      options.decode_stack_rows_in_flight = std::atoi(argv[++i]);
    else if (a == "--decode-stack-window-rows-in-flight" && i + 1 < argc)
      options.decode_stack_window_rows_in_flight = std::atoi(argv[++i]);
    else if (a == "--decode-stack-trace") options.decode_stack_trace = true;
    else if (a == "--decode-stack-cta-attention") options.decode_stack_cta_attention = true;
    else if (a == "--decode-stack-item-merge") options.decode_stack_stage_merge = false;
    else if (a == "--decode-stack-cuda-core-keys") options.decode_stack_mma_keys = false;
    else if (a == "--decode-stack-flags") options.decode_stack_flags = true;
    else if (a == "--decode-stack-warp-merge") options.decode_stack_warp_merge = true;
    else if (a == "--decode-stack-warp0-streams") options.decode_stack_warp0_streams = true;
    else if (a == "--decode-stack-cluster-mlp") options.decode_stack_cluster_mlp = true;
    else if (a == "--decode-stack-no-cluster-mlp") options.decode_stack_cluster_mlp = false;
    else if (a == "--decode-stack-global-staging") options.decode_stack_local_staging = false;
    else if (a == "--no-flash") options.flash_attention = false;
    else if (a == "--flash-decode-min-keys" && i + 1 < argc) options.flash_decode_min_keys = std::atoi(argv[++i]);
    else if (a == "--flash-decode-warps" && i + 1 < argc) options.flash_decode_warps = std::atoi(argv[++i]);
    else if (a == "--short-decode-attn" && i + 1 < argc && (std::strcmp(argv[i + 1], "paged") == 0 ||
                                                            std::strcmp(argv[i + 1], "cluster") == 0))
      options.short_decode_attention = std::strcmp(argv[++i], "cluster") == 0
                                           ? kr::CudaOptions::ShortDecodeAttention::kCluster
                                           : kr::CudaOptions::ShortDecodeAttention::kPaged;
    else if (a == "--no-pdl-attn") options.pdl_short_decode = false;
    else if (a == "--decode-only") set.decode_only = true;
    else if (a == "--brief") set.brief = true;
    else if (a == "--profile-decode" && i + 1 < argc) set.profile_decode_steps = std::atoi(argv[++i]);
    else if (a == "--profile-batch" && i + 1 < argc) set.profile_batch = std::max(1, std::atoi(argv[++i]));
    else if (a == "--profile-prefill" && i + 1 < argc) set.profile_prefill = std::max(1, std::atoi(argv[++i]));
    else if (a == "--gemv-bench") gemv = true;
    else if (a == "--qgemm-bench") qgemm = true;
    else if (a == "--attn-bench") attn = true;
    else if (a == "--launch-bench") launch_chain = true;
    else if (a == "--persistent-gemv-bench") persistent_gemv = true;
    else if (a == "--mega-gemv-bench") mega_gemv = true;
    else if (a == "--layers" && i + 1 < argc) bench_layers = std::max(1, std::atoi(argv[++i]));
    else if (a == "--rounds" && i + 1 < argc) attn_set.rounds = std::max(1, std::atoi(argv[++i]));
    else if (a == "--variants" && i + 1 < argc) {
      for (const std::string& v : kr::split_names(argv[++i])) attn_set.variants.push_back(std::atoi(v.c_str()));
    } else if (a == "--prefill-variant" && i + 1 < argc) options.flash_prefill_variant = std::atoi(argv[++i]);
    else if (a == "--prefill-short-variant" && i + 1 < argc) options.flash_prefill_short_variant = std::atoi(argv[++i]);
    else if (a == "--prefill-short-max-keys" && i + 1 < argc) options.flash_prefill_short_max_keys = std::atoi(argv[++i]);
    else if (a == "--qgemv" && i + 1 < argc && kr::parse_quant_gemv(argv[i + 1], &options.quant_gemv)) ++i;
    else if (a == "--qgemv-split" && i + 1 < argc) options.quant_gemv_split = std::atoi(argv[++i]);
    else if (a == "--qgemm-batched" && i + 1 < argc && kr::parse_quant_gemm(argv[i + 1], &options.quant_gemm)) ++i;
    else if (a == "--dump-logits" && i + 2 < argc) {
      dump_ids = argv[++i];
      dump_out = argv[++i];
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 1;
    }
  }
  if (options.flash_decode_warps != 0 && options.flash_decode_warps != 2 && options.flash_decode_warps != 4) {
    std::fprintf(stderr, "kr-cuda-bench: --flash-decode-warps must be 0, 2 or 4\n");
    return 1;
  }
  options.pdl = set.pdl;
  options.pdl_norms = set.pdl_norms;
  set.options = options;
  std::vector<std::string> archs;
  if (model_dir.empty()) {
    archs = arch_list == "all" ? kr::model_config_preset_names()
                               : kr::split_names(arch_list.empty() ? "llama-3.2-3b" : arch_list);
  } else {
    archs = {arch_list};  // the folder's config (or one preset's shape over the folder's weights)
  }
  if (archs.size() > 1 && (!json_path.empty() || !dump_ids.empty())) {
    std::fprintf(stderr, "--json and --dump-logits take one model; use --json-dir DIR with several presets\n");
    return 1;
  }
  if (!kr::cuda_device_available()) {
    std::fprintf(stderr, "kr-cuda-bench: no CUDA device\n");
    return 2;
  }
  if (launch_chain) {
    nlohmann::json rows = nlohmann::json::array();
    bool ordered = true;
    for (const kr::LaunchBenchRow& r : kr::run_launch_bench()) {
      rows.push_back({{"blocks", r.blocks}, {"pdl", r.pdl}, {"us_per_kernel", r.us_per_kernel}, {"ordered", r.ordered}});
      ordered &= r.ordered;
    }
    const kr::ArgmaxTailResult tail = kr::run_argmax_tail_bench();
    if (!json_path.empty()) {
      std::ofstream out(json_path);
      out << nlohmann::json{{"launch_chain", rows},
                            {"argmax_tail_us",
                             {{"chain", tail.chain_us},
                              {"after_graph", tail.after_graph_us},
                              {"in_graph", tail.in_graph_us},
                              {"in_chain", tail.in_chain_us}}}}
                 .dump(2)
          << "\n";
    }
    return ordered ? 0 : 1;
  }
  if (mega_gemv) {
    const kr::MegaGemvBenchResult r = kr::run_mega_gemv_bench(bench_layers);
    if (!json_path.empty()) {
      nlohmann::json rows = nlohmann::json::array();
      for (const auto& row : r.rows) rows.push_back({{"name", row.name}, {"us", row.us}});
      std::ofstream out(json_path);
      out << nlohmann::json{{"mega_gemv", {{"layers", r.layers}, {"weight_bytes", r.weight_bytes}, {"rows", rows},
                                           {"rel_err_ring", r.rel_err[0]}, {"rel_err_linear", r.rel_err[1]},
                                           {"rel_err_linear_deterministic", r.rel_err[2]},
                                           {"rel_err_pair_aligned", r.rel_err[3]},
                                           {"rel_err_quarter_pair_items", r.rel_err[4]},
                                           {"rel_err_with_attention", r.rel_err[5]},
                                           {"deterministic", r.deterministic}, {"atomic_runs_equal", r.atomic_runs_equal},
                                           {"ok", r.ok}}}}
                 .dump(2)
          << "\n";
    }
    return r.ok ? 0 : 1;
  }
  if (persistent_gemv) {
    const kr::PersistentGemvBenchResult r = kr::run_persistent_gemv_bench(bench_layers);
    if (!json_path.empty()) {
      std::ofstream out(json_path);
      out << nlohmann::json{{"persistent_gemv", {{"layers", r.layers}, {"weight_bytes", r.weight_bytes},
                                                 {"persistent_us", r.persistent_us},
                                                 {"per_matrix_us", r.per_matrix_us}, {"read_only_us", r.read_only_us}, {"read_all_us", r.read_all_us},
                                                 {"read_all_one_cta_us", r.read_all_one_cta_us},
                                                 {"regs_us", r.regs_us}, {"regs_no_math_us", r.regs_no_math_us},
                                                 {"regs_no_barrier_us", r.regs_no_barrier_us},
                                                 {"warp_ring_us", r.warp_ring_us},
                                                 {"warp_ring_no_math_us", r.warp_ring_no_math_us},
                                                 {"warp_ring_no_barrier_us", r.warp_ring_no_barrier_us},
                                                 {"no_math_us", r.no_math_us},
                                                 {"no_barrier_us", r.no_barrier_us}, {"equal", r.equal}}}}
                 .dump(2)
          << "\n";
    }
    return r.equal ? 0 : 1;
  }
  if (attn) {
    attn_set.options = options;
    attn_set.json_path = json_path;
    return kr::run_attn_bench(attn_set);
  }
  if (gemv) {
    if (set.quant.empty()) {
      kr::gemv_bench();
    } else {
      auto c = kr::model_config_preset(archs.empty() || archs[0].empty() ? "llama-3.2-3b" : archs[0]);
      KR_CHECK_MSG(c.ok(), c.status().to_string().c_str());
      // A backend per T <= 8 kernel, and per forced K split of the stream kernel.
      struct PathSpec {
        const char* label;
        kr::CudaOptions::QuantGemv kind;
        int split;
      };
      const PathSpec specs[] = {{"mma", kr::CudaOptions::QuantGemv::kMma, 0},
                                {"row", kr::CudaOptions::QuantGemv::kRow, 0},
                                {"row-tc", kr::CudaOptions::QuantGemv::kRowTc, 0},
                                {"stream", kr::CudaOptions::QuantGemv::kStream, 0},
                                {"stream-S1", kr::CudaOptions::QuantGemv::kStream, 1},
                                {"stream-S2", kr::CudaOptions::QuantGemv::kStream, 2},
                                {"stream-S4", kr::CudaOptions::QuantGemv::kStream, 4},
                                {"stream-S8", kr::CudaOptions::QuantGemv::kStream, 8}};
      std::vector<std::unique_ptr<kr::Backend>> backends;
      std::vector<std::pair<const char*, kr::Backend*>> paths;
      for (const PathSpec& sp : specs) {
        kr::CudaOptions o = options;
        o.quant_gemv = sp.kind;
        o.quant_gemv_split = sp.split;
        backends.push_back(kr::make_cuda_backend(o));
        paths.emplace_back(sp.label, backends.back().get());
      }
      kr::quant_gemv_bench(paths, set.quant, *c, {1, 8}, false);
    }
    return 0;
  }
  if (fp8_gemm) {
    auto c = kr::model_config_preset(archs.empty() || archs[0].empty() || arch_list.empty() ? "llama-3.1-8b" : archs[0]);
    KR_CHECK_MSG(c.ok(), c.status().to_string().c_str());
    // The small-T GEMM, the wgmma GEMM and cuBLASLt, each on its own backend.
    std::vector<std::unique_ptr<kr::Backend>> backends;
    std::vector<std::pair<const char*, kr::Backend*>> paths;
    for (const auto& [label, max_tokens] :
         {std::pair<const char*, std::array<int, 2>>{"fp8-small", {64, 0}}, {"fp8-wgmma", {0, 64}}, {"cublaslt", {0, 0}}}) {
      kr::CudaOptions o = options;
      o.fp8_small_gemm_max_tokens = max_tokens[0];
      o.fp8_wgmma_gemm_max_tokens = max_tokens[1];
      backends.push_back(kr::make_cuda_backend(o));
      paths.emplace_back(label, backends.back().get());
    }
    kr::quant_gemv_bench(paths, set.quant.empty() ? "fp8" : set.quant, *c, {16, 32, 64}, false);
    // The wgmma GEMM's launch per shape (K slices, ring stages).
    int num_sms = 0;
    KR_CHECK(cudaDeviceGetAttribute(&num_sms, cudaDevAttrMultiProcessorCount, options.device) == cudaSuccess);
    for (const auto& sh : kr::linear_shapes(*c))
      for (int T : {16, 32, 64}) {
        kr::cuda::Fp8SmallGemmArgs a;
        a.N = static_cast<int>(sh[0]);
        a.K = a.ld_w = static_cast<int>(sh[1]);
        a.T = T;
        a.num_sms = num_sms;
        a.force_split = options.fp8_small_gemm_split;
        std::printf("fp8-wgmma plan T %-3d N %-6lld K %-6lld %s\n", T, static_cast<long long>(sh[0]),
                    static_cast<long long>(sh[1]), kr::cuda::fp8_wgmma_gemm_plan(a).c_str());
      }
    return 0;
  }
  if (qgemm) {
    auto c = kr::model_config_preset(archs.empty() || archs[0].empty() ? "llama-3.2-3b" : archs[0]);
    KR_CHECK_MSG(c.ok(), c.status().to_string().c_str());
    // A backend per T > 8 kernel (dense fallback off: every T runs the kernel), and bf16 cuBLAS.
    std::vector<std::unique_ptr<kr::Backend>> backends;
    std::vector<std::pair<const char*, kr::Backend*>> paths;
    for (auto kind : {kr::CudaOptions::QuantGemm::kV1, kr::CudaOptions::QuantGemm::kV2,
                      kr::CudaOptions::QuantGemm::kWgmma}) {
      kr::CudaOptions o = options;
      o.quant_gemm = kind;
      o.quant_dense_min_tokens = o.quant8_dense_min_tokens = 1 << 20;
      backends.push_back(kr::make_cuda_backend(o));
      paths.emplace_back(kr::quant_gemm_name(kind), backends.back().get());
    }
    kr::quant_gemv_bench(paths, set.quant.empty() ? "awq" : set.quant, *c, {16, 32, 64, 128, 200}, true);
    return 0;
  }
  int exit_code = 0;
  std::vector<std::pair<std::string, nlohmann::json>> results;
  for (const std::string& arch : archs) {
    // A backend per model: the weights live as long as their backend.
    auto gpu = kr::make_cuda_backend(options);
    nlohmann::json r = kr::run_model(*gpu, model_dir, arch, set, dump_ids, dump_out, &exit_code);
    if (r.is_null()) {
      if (exit_code != 0) return exit_code;
      continue;
    }
    if (!json_path.empty()) {
      std::ofstream out(json_path);
      out << r.dump(2) << "\n";
    }
    if (!json_dir.empty()) {
      std::ofstream out(json_dir + "/" + (arch.empty() ? std::string("model") : arch) + ".json");
      out << r.dump(2) << "\n";
    }
    results.emplace_back(arch.empty() ? model_dir : arch, std::move(r));
  }
  if (results.size() > 1) {
    std::printf("\n%-18s %10s %9s %10s %12s\n", "preset", "b1 tok/s", "roofline", "pp512", "b64 tok/s");
    for (const auto& [name, r] : results) {
      auto num = [&](const char* key) { return r.contains(key) ? r[key].get<double>() : 0.0; };
      std::printf("%-18s %10.1f %8.0f%% %10.0f %12.0f\n", name.c_str(), num("decode_b1_ctx128_tok_s"),
                  100.0 * num("decode_b1_ctx128_roofline_fraction"), num("prefill_pp512_tok_s"),
                  num("decode_b64_ctx200_tok_s"));
    }
  }
  return exit_code;
}
