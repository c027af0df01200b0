// kr-cuda-bench --attn-bench (see attn_bench.h).
//
// One K/V cache of the longest case (120,192 tokens, blocks in order as a fresh
// sequence's), q rows for the longest chunk; values random and bf16-exact, q wide
// enough (scores of std ~2.7, as kr-backend-ops' long checks) that the softmax
// concentrates on tens of keys, so a variant that drops or repeats a key tile moves
// some output past the tolerance. Every variant gets the same numbers on a backend
// of its own (all alive at once, each case's timed rounds alternating between them);
// its outputs (all rows, first call) are compared with variant 0's.
#include "bench/cuda/attn_bench.h"

// GCC 12's false -Wrestrict on std::string operator+ chains (GCC bug 105329).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "backend/cuda/cuda_flash_attention.h"
#include "backend/dtype_convert.h"
#include "bench/cuda/bench_random.h"

namespace kr {
namespace {

// The Llama-3.2-3B attention shape.
constexpr int kHq = 24, kHkv = 8, kD = 128, kBlock = 16;
constexpr int64_t kW = int64_t{kHq + 2 * kHkv} * kD;  // qkv row width
constexpr double kCeilingTflops = 775.0;                // bf16 dense tensor cores, H200
constexpr double kTol = 0.02;  // max |diff| / max |reference|, as kr-backend-ops' attention checks
constexpr float kQScale = 8.0f;

struct Case {
  int chunk, cached;
};
constexpr Case kCases[] = {{8192, 0},     {8192, 32768}, {8192, 112000}, {2048, 30000}, {512, 30000},
                           {256, 30000}, {4096, 0},     {2048, 0},      {1024, 0},     {512, 0}};

using bench_random::now_s;
using bench_random::random_bf16;

// One sequence: `cached` tokens in the cache, `chunk` new ones; block b of the
// sequence is cache block b.
StepMetadata chunk_step(const Case& c) {
  const int ctx = c.cached + c.chunk;
  const int blocks = (ctx + kBlock - 1) / kBlock;
  StepMetadata m;
  m.num_seqs = 1;
  m.num_tokens = c.chunk;
  m.block_size = kBlock;
  m.max_blocks_per_seq = blocks;
  m.max_context_len = ctx;
  for (int i = 0; i < c.chunk; ++i) {
    m.positions.push_back(c.cached + i);
    m.slot_mapping.push_back(c.cached + i);
  }
  m.query_start = {0, c.chunk};
  m.context_lens = {ctx};
  for (int b = 0; b < blocks; ++b) m.block_tables.push_back(b);
  return m;
}

// (query, key) pairs of the causal chunk against its context, and their FLOPs
// (q·k and p·v: 2 · 2 · D per pair and q head).
double pairs_of(const Case& c) {
  return static_cast<double>(c.chunk) * c.cached + 0.5 * static_cast<double>(c.chunk) * (c.chunk + 1);
}
double flops_of(const Case& c) { return 4.0 * kD * kHq * pairs_of(c); }

std::string case_name(const Case& c) {
  return "chunk " + std::to_string(c.chunk) + " after " + std::to_string(c.cached);
}

// One variant's backend with its copy of the inputs.
struct Runner {
  int variant = 0;
  std::unique_ptr<Backend> gpu;
  KvLayer kv;
  Tensor qkv, out;
  std::vector<double> per_call;  // this case's rounds, seconds per call
  int calls_per_round = 1;
  ~Runner() {
    if (!gpu) return;
    for (Tensor* t : {&out, &qkv, &kv.v, &kv.k})
      if (!t->empty()) gpu->free(*t);
  }
};

// One timed round: `calls` back-to-back attention calls between two
// synchronisations; seconds per call.
double time_round(Backend& gpu, const Tensor& qkv, const KvLayer& kv, const AttentionParams& p, Tensor& out,
                  int calls) {
  gpu.synchronize();
  const double t0 = now_s();
  for (int i = 0; i < calls; ++i) gpu.attention(qkv, kv, p, out);
  gpu.synchronize();
  return (now_s() - t0) / calls;
}

}  // namespace

int run_attn_bench(const AttnBenchSettings& s) {
  std::vector<int> variants = {0};
  for (int v = 0; v < cuda::kFlashPrefillVariants; ++v)
    if (v != 0 && (s.variants.empty() || std::find(s.variants.begin(), s.variants.end(), v) != s.variants.end()))
      variants.push_back(v);
  for (int v : s.variants)
    if (v < 0 || v >= cuda::kFlashPrefillVariants) {
      std::fprintf(stderr, "kr-cuda-bench --attn-bench: no prefill variant %d (0 … %d)\n", v,
                   cuda::kFlashPrefillVariants - 1);
      return 1;
    }
  int max_ctx = 0, max_chunk = 0;
  for (const Case& c : kCases) {
    max_ctx = std::max(max_ctx, c.cached + c.chunk);
    max_chunk = std::max(max_chunk, c.chunk);
  }
  const int num_blocks = (max_ctx + kBlock - 1) / kBlock;
  const size_t cache_elems = static_cast<size_t>(num_blocks) * kBlock * kHkv * kD;
  const double t_gen = now_s();
  const std::vector<uint16_t> k_host = random_bf16(cache_elems, 11, 1.0f);
  const std::vector<uint16_t> v_host = random_bf16(cache_elems, 12, 1.0f);
  const std::vector<uint16_t> q_host = random_bf16(static_cast<size_t>(max_chunk) * kW, 13, kQScale);
  AttentionParams p;
  p.q_heads = kHq;
  p.kv_heads = kHkv;
  p.head_dim = kD;
  p.scale = 1.0f / std::sqrt(static_cast<float>(kD));

  nlohmann::json j;
  {
    int dev = s.options.device, sms = 0;
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, dev) == cudaSuccess) {
      sms = prop.multiProcessorCount;
      j["device"] = prop.name;
    }
    j["sms"] = sms;
    std::printf("kr-cuda-bench --attn-bench on %s (%d SMs): prefill attention alone, Hq %d / Hkv %d, D %d, "
                "blocks of %d; inputs made in %.1f s\n",
                prop.name, sms, kHq, kHkv, kD, kBlock, now_s() - t_gen);
  }
  j["shape"] = {{"q_heads", kHq}, {"kv_heads", kHkv}, {"head_dim", kD}, {"block_size", kBlock}};
  j["ceiling_tflops"] = kCeilingTflops;
  j["tolerance_rel"] = kTol;
  const int ncases = static_cast<int>(std::size(kCases));
  std::vector<std::vector<nlohmann::json>> rows(ncases);  // [case][variant]
  int differ = 0;
  // Every variant's backend alive at once, so that each case's rounds alternate
  // between the variants (clock and temperature drift spread over all of them).
  std::vector<std::unique_ptr<Runner>> runners;
  for (int v : variants) {
    auto r = std::make_unique<Runner>();
    r->variant = v;
    CudaOptions o = s.options;
    o.flash_prefill_variant = v;
    o.flash_prefill_short_max_keys = 0;  // the variant itself at every context, not the short-context policy
    r->gpu = make_cuda_backend(o);
    if (!r->gpu) {
      std::fprintf(stderr, "kr-cuda-bench --attn-bench: no CUDA backend\n");
      return 2;
    }
    Backend& gpu = *r->gpu;
    r->kv.k = gpu.alloc(DType::kBF16, {num_blocks, kBlock, kHkv, kD});
    r->kv.v = gpu.alloc(DType::kBF16, {num_blocks, kBlock, kHkv, kD});
    r->qkv = gpu.alloc(DType::kBF16, {max_chunk, kW});
    r->out = gpu.alloc(DType::kBF16, {max_chunk, int64_t{kHq} * kD});
    gpu.copy_from_host(r->kv.k, k_host.data(), k_host.size() * sizeof(uint16_t));
    gpu.copy_from_host(r->kv.v, v_host.data(), v_host.size() * sizeof(uint16_t));
    gpu.copy_from_host(r->qkv, q_host.data(), q_host.size() * sizeof(uint16_t));
    runners.push_back(std::move(r));
  }
  std::printf("variants:");
  for (int v : variants) std::printf(" %d (%s)", v, cuda::flash_prefill_variant_name(v));
  std::printf("; %d rounds per case and variant, alternating\n", s.rounds);
  for (int ci = 0; ci < ncases; ++ci) {
    const Case& c = kCases[ci];
    const StepMetadata m = chunk_step(c);
    const size_t out_elems = static_cast<size_t>(c.chunk) * kHq * kD;
    std::vector<uint16_t> reference;
    double reference_max = 0.0;
    // The first call of each variant: its output (checked), and the calls per round.
    std::vector<double> max_diff(runners.size(), 0.0);
    std::vector<char> finite(runners.size(), 1);
    for (size_t k = 0; k < runners.size(); ++k) {
      Runner& r = *runners[k];
      Tensor q = r.qkv.rows(0, c.chunk), o_rows = r.out.rows(0, c.chunk);
      std::vector<uint16_t> got(out_elems, 0xFFFF);  // bf16 NaN: an unwritten element differs
      r.gpu->copy_from_host(o_rows, got.data(), out_elems * sizeof(uint16_t));
      r.gpu->set_step_metadata(m);
      const double once = time_round(*r.gpu, q, r.kv, p, o_rows, 1);
      r.calls_per_round = std::clamp(static_cast<int>(std::ceil(0.025 / std::max(once, 1e-6))), 1, 200);
      r.per_call.clear();
      r.gpu->copy_to_host(got.data(), o_rows, out_elems * sizeof(uint16_t));
      for (size_t i = 0; i < out_elems; ++i) {
        const float f = bf16_to_f32(got[i]);
        if (!std::isfinite(f)) finite[k] = 0;
        if (k == 0) reference_max = std::max(reference_max, static_cast<double>(std::abs(f)));
        else max_diff[k] = std::max(max_diff[k], std::abs(static_cast<double>(f) - bf16_to_f32(reference[i])));
      }
      if (k == 0) reference = std::move(got);
    }
    for (int round = 0; round < s.rounds; ++round)
      for (auto& rp : runners) {
        Runner& r = *rp;
        Tensor q = r.qkv.rows(0, c.chunk), o_rows = r.out.rows(0, c.chunk);
        r.per_call.push_back(time_round(*r.gpu, q, r.kv, p, o_rows, r.calls_per_round));
      }
    for (size_t k = 0; k < runners.size(); ++k) {
      Runner& r = *runners[k];
      std::vector<double> t = r.per_call;
      std::sort(t.begin(), t.end());
      const double best_s = t.front(), median_s = t[t.size() / 2];
      const bool same = finite[k] && max_diff[k] <= kTol * std::max(reference_max, 1e-6);
      if (!same) ++differ;
      const double tflops = flops_of(c) / best_s / 1e12;
      std::printf("%-26s v%d %-11s best %9.3f ms  median %9.3f ms  (%3d calls/round)  %7.2f TFLOP  %6.1f TFLOP/s  "
                  "%4.1f%% of %.0f  max|diff| vs v0 %.3g (max|out| %.3g) %s\n",
                  case_name(c).c_str(), r.variant, cuda::flash_prefill_variant_name(r.variant), best_s * 1e3,
                  median_s * 1e3, r.calls_per_round, flops_of(c) / 1e12, tflops, 100.0 * tflops / kCeilingTflops,
                  kCeilingTflops, max_diff[k], reference_max, same ? "same" : (finite[k] ? "DIFFERS" : "NOT FINITE"));
      rows[ci].push_back({{"variant", r.variant},
                          {"name", cuda::flash_prefill_variant_name(r.variant)},
                          {"best_s", best_s},
                          {"median_s", median_s},
                          {"calls_per_round", r.calls_per_round},
                          {"rounds", s.rounds},
                          {"tflops", tflops},
                          {"ceiling_fraction", tflops / kCeilingTflops},
                          {"max_abs_diff_vs_variant0", max_diff[k]},
                          {"max_abs_variant0", reference_max},
                          {"finite", finite[k] != 0},
                          {"same_as_variant0", same}});
    }
    std::fflush(stdout);
  }
  std::printf("\nbest variant per case (the fastest by best time among those equal to variant 0):\n");
  nlohmann::json cases = nlohmann::json::array();
  for (int ci = 0; ci < ncases; ++ci) {
    const Case& c = kCases[ci];
    int best = -1;
    for (size_t k = 0; k < rows[ci].size(); ++k)
      if (rows[ci][k]["same_as_variant0"].get<bool>() &&
          (best < 0 || rows[ci][k]["best_s"].get<double>() < rows[ci][best]["best_s"].get<double>()))
        best = static_cast<int>(k);
    nlohmann::json cj = {{"chunk", c.chunk},
                         {"cached", c.cached},
                         {"pairs", pairs_of(c)},
                         {"flops", flops_of(c)},
                         {"variants", rows[ci]}};
    if (best >= 0) {
      const nlohmann::json& b = rows[ci][best];
      const double base_s = rows[ci][0]["best_s"].get<double>();
      cj["best_variant"] = b["variant"];
      cj["best_name"] = b["name"];
      cj["best_speedup_vs_variant0"] = base_s / b["best_s"].get<double>();
      std::printf("BEST %-26s variant %d (%s) %9.3f ms %6.1f TFLOP/s, %.3fx variant 0 (%.1f TFLOP/s)\n",
                  case_name(c).c_str(), b["variant"].get<int>(), b["name"].get<std::string>().c_str(),
                  b["best_s"].get<double>() * 1e3, b["tflops"].get<double>(), base_s / b["best_s"].get<double>(),
                  rows[ci][0]["tflops"].get<double>());
    }
    cases.push_back(cj);
  }
  j["cases"] = cases;
  if (differ > 0) std::printf("%d (case, variant) result(s) differ from variant 0\n", differ);
  if (!s.json_path.empty()) {
    std::ofstream f(s.json_path);
    f << j.dump(2) << "\n";
    std::printf("saved %s\n", s.json_path.c_str());
  }
  return differ > 0 ? 1 : 0;
}

}  // namespace kr
