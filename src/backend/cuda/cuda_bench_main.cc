// kr-cuda-bench: throughput of a Llama model on the CUDA backend, no HTTP, no
// tokenizer: load time, device memory, prefill (one sequence of N tokens),
// batch-1 decode at a given context, batched decode. Decode steps run as step
// graphs (one per batch size) and sample greedily on the device, as a server
// step would. Also dumps logits for comparison with Hugging Face.
//
// Usage: kr-cuda-bench [--model DIR | --arch llama-3.2-3b] [--json FILE] [--no-graphs]
//        kr-cuda-bench --model DIR --dump-logits IDS.txt OUT.f32   (prefill, all rows, f32 [T, V])
#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/cuda/cuda_backend.h"
#include "model/llama_model.h"

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
  LlamaModel& model;
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

  // `steps` decode steps of B sequences starting at context ctx0; greedy ids back to the host each step.
  double decode(int B, int ctx0, int steps) {
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
      KR_CHECK(gpu.argmax_logprob(*l, out_ids.data(), lps.data()));
      for (int s = 0; s < B; ++s) ids[s] = out_ids[s];
    }
    return static_cast<double>(B) * steps / (now_s() - t0);
  }
};

int dump_logits(Backend& gpu, LlamaModel& model, const std::string& ids_path, const std::string& out_path) {
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
  bool graphs = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc) model_dir = argv[++i];
    else if (a == "--arch" && i + 1 < argc) arch = argv[++i];
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a == "--no-graphs") graphs = false;
    else if (a == "--dump-logits" && i + 2 < argc) {
      dump_ids = argv[++i];
      dump_out = argv[++i];
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 1;
    }
  }
  if (model_dir.empty() && arch.empty()) arch = "llama-3.2-3b";
  auto gpu = kr::make_cuda_backend(0);
  if (!gpu) {
    std::fprintf(stderr, "kr-cuda-bench: no CUDA device\n");
    return 2;
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
  kr::LlamaModel& model = **model_or;
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
  std::printf("gpu %s; load %.2f s; weights %.2f GB; KV cache %.1f GB; device memory used %.1f GB\n", prop.name,
              load_s, model.weight_bytes() / 1e9, model.kv_cache_bytes() / 1e9, (free0 - free1) / 1e9);
  std::fflush(stdout);
  kr::Bench b{*gpu, model, graphs};
  const double roofline = 3.9e12 / static_cast<double>(model.weight_bytes());
  for (int ctx : {128, 4096}) {
    const double tps = b.decode(1, ctx, 128);
    r["decode_b1_ctx" + std::to_string(ctx) + "_tok_s"] = tps;
    std::printf("decode batch 1 ctx %-5d %8.1f tok/s (%.0f%% of the %.0f tok/s roofline)\n", ctx, tps,
                100.0 * tps / roofline, roofline);
    std::fflush(stdout);
  }
  r["roofline_b1_tok_s"] = roofline;
  for (int n : {64, 512, 2048}) {
    const double tps = b.prefill(n, 3);
    r["prefill_pp" + std::to_string(n) + "_tok_s"] = tps;
    std::printf("prefill pp%-5d %10.0f tok/s\n", n, tps);
    std::fflush(stdout);
  }
  for (int B : {16, 64, 256}) {
    const double tps = b.decode(B, 200, 32);
    r["decode_b" + std::to_string(B) + "_ctx200_tok_s"] = tps;
    std::printf("decode batch %-4d ctx 200 %8.0f tok/s\n", B, tps);
    std::fflush(stdout);
  }
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << r.dump(2) << "\n";
  }
  return 0;
}
