// kr-cuda-bench: throughput of a model on the CUDA backend, no HTTP, no
// tokenizer: load time, device memory, prefill (one sequence of N tokens),
// batch-1 decode at a given context (with the bytes one token reads and the
// fraction of the 3.9 TB/s roofline that makes), batched decode. Decode steps run
// as step graphs (one per batch size) and sample greedily on the device, as a
// server step would. Also dumps logits for comparison with Hugging Face.
//
// Usage: kr-cuda-bench [--model DIR | --arch NAME] [--json FILE] [--no-graphs] [--no-pdl]
//                      [--decode-only]   (batch-1 decode only; the JSON holds what ran)
//                      [--brief]         (batch-1 decode at ctx 128, pp512, batch-64 decode)
//        NAME: a preset of model_config_preset_names() (llama-3.2-3b, llama-3.1-8b, qwen3-8b,
//        qwen2.5-7b, mistral-7b-v0.3, gemma-3-4b), with random bf16 weights of its shape
//        kr-cuda-bench --gemv-bench   (batch-1 GEMV bandwidth per 3B matrix shape)
//        kr-cuda-bench --model DIR --dump-logits IDS.txt OUT.f32   (prefill, all rows, f32 [T, V])
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_kernels.h"
#include "model/model.h"

namespace kr {
namespace {

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
  std::vector<float> greedy_trace(int B, int ctx0, int steps, bool use_graphs) {
    const int bs = model.block_size();
    const int width = (ctx0 + steps + bs - 1) / bs;
    std::vector<int32_t> ids(B), rows(B), out_ids(B);
    for (int i = 0; i < B; ++i) ids[i] = 1000 + 17 * i, rows[i] = i;
    std::vector<float> lps(B), trace;
    for (int i = 0; i < steps; ++i) {
      const StepMetadata m = make_step(B, 1, ctx0 + i, bs, width);
      const bool g = use_graphs && gpu.begin_graph((uint64_t{1} << 63) | static_cast<uint64_t>(B));
      auto l = model.forward(m, ids, rows);
      KR_CHECK(l.ok());
      if (g) gpu.end_graph();
      KR_CHECK(gpu.argmax_logprob(*l, out_ids.data(), lps.data()));
      for (int s = 0; s < B; ++s) {
        ids[s] = out_ids[s];
        trace.push_back(static_cast<float>(out_ids[s]));
        trace.push_back(lps[s]);
      }
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
    for (int i = -3; i < steps; ++i) {  // 3 warm-up steps record the graph
      if (i == 0) {
        gpu.synchronize();
        t0 = now_s();
      }
      const StepMetadata m = make_step(B, 1, ctx0 + 3 + i, bs, width);
      const bool g = graphs && gpu.begin_graph(key);
      auto l = model.forward(m, ids, rows);
      KR_CHECK(l.ok());
      if (g) gpu.end_graph();
      if (!sample && i >= 0) continue;
      KR_CHECK(gpu.argmax_logprob(*l, out_ids.data(), lps.data()));
      for (int s = 0; s < B; ++s) ids[s] = out_ids[s];
    }
    gpu.synchronize();
    return static_cast<double>(B) * steps / (now_s() - t0);
  }
};

// Batch-1 GEMV (split-K, cuda_gemv1.h) bandwidth per 3B matrix shape, weights
// rotated through 2 GB so that L2 holds none of them. Launched without PDL, so
// that each GEMV is timed alone.
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
  const int shapes[][2] = {{5120, 3072}, {3072, 3072}, {16384, 3072}, {3072, 8192}, {128256, 3072}};
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

// HBM bytes one batch-1 decode step reads at context `ctx`: every weight once,
// except an untied embedding table (one row of it), plus the K and V rows of the
// context in each layer (a sliding layer only its window's).
double decode_bytes_per_token(const Model& model, int ctx) {
  const ModelConfig& c = model.config();
  double bytes = static_cast<double>(model.weight_bytes());
  if (!c.tie_word_embeddings) bytes -= static_cast<double>(c.vocab_size - 1) * c.hidden_size * 2.0;
  const double kv_row = 2.0 * c.num_key_value_heads * c.head_dim * 2.0;  // K and V, bf16
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

}  // namespace
}  // namespace kr

int main(int argc, char** argv) {
  std::string model_dir, arch, json_path, dump_ids, dump_out;
  bool graphs = true, decode_only = false, gemv = false, brief = false;
  kr::CudaOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc) model_dir = argv[++i];
    else if (a == "--arch" && i + 1 < argc) arch = argv[++i];
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a == "--no-graphs") graphs = false;
    else if (a == "--no-pdl") options.pdl = false;
    else if (a == "--decode-only") decode_only = true;
    else if (a == "--brief") brief = true;
    else if (a == "--gemv-bench") gemv = true;
    else if (a == "--dump-logits" && i + 2 < argc) {
      dump_ids = argv[++i];
      dump_out = argv[++i];
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 1;
    }
  }
  if (model_dir.empty() && arch.empty()) arch = "llama-3.2-3b";
  auto gpu = kr::make_cuda_backend(options);
  if (!gpu) {
    std::fprintf(stderr, "kr-cuda-bench: no CUDA device\n");
    return 2;
  }
  if (gemv) {
    kr::gemv_bench();
    return 0;
  }
  size_t free0 = 0, total = 0;
  cudaMemGetInfo(&free0, &total);
  kr::ModelOptions opt;
  opt.arch = arch;
  opt.dummy_weights = model_dir.empty();
  const double t0 = kr::now_s();
  auto model_or = kr::load_model(model_dir, *gpu, opt);
  if (!model_or.ok()) {
    std::fprintf(stderr, "load: %s\n", model_or.status().to_string().c_str());
    return 1;
  }
  gpu->synchronize();
  const double load_s = kr::now_s() - t0;
  kr::Model& model = **model_or;
  if (!dump_ids.empty()) return kr::dump_logits(*gpu, model, dump_ids, dump_out);
  size_t free1 = 0;
  cudaMemGetInfo(&free1, &total);
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);

  nlohmann::json r;
  r["gpu"] = prop.name;
  r["model"] = model_dir.empty() ? arch + " (dummy bf16 weights)" : model_dir;
  r["load_s"] = load_s;
  r["weight_bytes"] = model.weight_bytes();
  r["kv_cache_bytes"] = model.kv_cache_bytes();
  r["device_memory_used_bytes"] = free0 - free1;
  r["graphs"] = graphs;
  r["pdl"] = options.pdl;
  std::printf("%s on %s; load %.2f s; weights %.2f GB; KV cache %.1f GB; device memory used %.1f GB\n",
              r["model"].get<std::string>().c_str(), prop.name, load_s, model.weight_bytes() / 1e9,
              model.kv_cache_bytes() / 1e9, (free0 - free1) / 1e9);
  std::fflush(stdout);
  kr::Bench b{*gpu, model, graphs};
  {
    // Step graphs (and PDL inside them) must reproduce the eager steps exactly.
    const std::vector<float> eager = b.greedy_trace(5, 40, 12, false);
    const std::vector<float> replay = b.greedy_trace(5, 40, 12, true);
    const bool same = eager == replay;
    r["graph_replay_equals_eager"] = same;
    std::printf("graph replay check (5 seqs x 12 steps, ids and logprobs): %s\n", same ? "equal" : "DIFFERENT");
  }
  // Roofline of batch-1 decode: the bytes a token reads at the H200's 3.9 TB/s.
  constexpr double kBandwidth = 3.9e12;
  r["arch"] = model.config().arch.architecture;
  for (int ctx : brief ? std::vector<int>{128} : std::vector<int>{128, 4096}) {
    const double tps = b.decode(1, ctx, 128);
    const double bytes = kr::decode_bytes_per_token(model, ctx);
    const double roofline = kBandwidth / bytes;
    const std::string key = "decode_b1_ctx" + std::to_string(ctx);
    r[key + "_tok_s"] = tps;
    r[key + "_bytes_per_token"] = bytes;
    r[key + "_roofline_tok_s"] = roofline;
    r[key + "_roofline_fraction"] = tps / roofline;
    std::printf("decode batch 1 ctx %-5d %8.1f tok/s; %.3f GB/token; %.0f%% of the %.0f tok/s roofline (3.9 TB/s)\n",
                ctx, tps, bytes / 1e9, 100.0 * tps / roofline, roofline);
    std::fflush(stdout);
  }
  {
    const double tps = b.decode(1, 128, 128, false);
    r["decode_b1_ctx128_no_sampling_tok_s"] = tps;
    r["decode_b1_ctx128_no_sampling_roofline_fraction"] = tps / (kBandwidth / kr::decode_bytes_per_token(model, 128));
    std::printf("decode batch 1 ctx 128   %8.1f tok/s without argmax/read of ids (graph launches only)\n", tps);
    std::fflush(stdout);
  }
  if (!decode_only) {
    for (int n : brief ? std::vector<int>{512} : std::vector<int>{64, 512, 2048}) {
      const double tps = b.prefill(n, 3);
      r["prefill_pp" + std::to_string(n) + "_tok_s"] = tps;
      std::printf("prefill pp%-5d %10.0f tok/s\n", n, tps);
      std::fflush(stdout);
    }
    for (int B : brief ? std::vector<int>{64} : std::vector<int>{16, 64, 256}) {
      const double tps = b.decode(B, 200, 32);
      r["decode_b" + std::to_string(B) + "_ctx200_tok_s"] = tps;
      std::printf("decode batch %-4d ctx 200 %8.0f tok/s\n", B, tps);
      std::fflush(stdout);
    }
  }
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << r.dump(2) << "\n";
  }
  return 0;
}
