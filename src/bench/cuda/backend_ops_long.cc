// Long-context checks of kr-backend-ops (see backend_ops_long.h).
//
// Attention: K/V caches, q and the block tables are random (bf16-exact values
// from a counter hash, so both backends read the same numbers; block ids
// shuffled). The GPU runs the whole step; the CPU reference runs only a sample of
// its query rows (all of them for short steps; at long lengths the first and last
// rows of every sequence and random ones), as a step of those rows over the same
// sequences. q is drawn wide enough (scores of std ~2.7) that the softmax
// concentrates on tens of keys, so a lost or repeated key tile moves the output
// well past the tolerance. Error: max |gpu - cpu| over the checked rows relative
// to max |cpu|, as the other kr-backend-ops checks.
#include "bench/cuda/backend_ops_long.h"

// GCC 12's false -Wrestrict on std::string operator+ chains (GCC bug 105329).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend/backend.h"
#include "backend/dtype_convert.h"
#include "bench/cuda/bench_random.h"
#include "model/model.h"

namespace kr {

bool g_kv_fp8 = false;

namespace {

constexpr int kBlockSize = 16;
constexpr double kTol = 0.02;  // as kr-backend-ops' attention checks
constexpr int kMaxCheckedRows = 72;

using bench_random::now_s;
using bench_random::parallel_ranges;
using bench_random::value_bf16;

// Tensors of one backend, freed with it.
struct Allocs {
  Backend& b;
  std::vector<Tensor> ts;
  explicit Allocs(Backend& backend) : b(backend) {}
  ~Allocs() {
    for (Tensor& t : ts) b.free(t);
  }
  Tensor make(DType d, std::initializer_list<int64_t> dims) {
    ts.push_back(b.alloc(d, dims));
    return ts.back();
  }
};

// A paged step: `cached[s]` tokens already in the cache and `fresh[s]` new ones;
// block ids shuffled; table width the runner's (a power of two >= the widest
// context, at least 4) when `pad_width`, else the widest context plus one.
StepMetadata make_step(const std::vector<int>& cached, const std::vector<int>& fresh, int num_blocks,
                       bool pad_width, std::mt19937_64& rng) {
  StepMetadata m;
  m.num_seqs = static_cast<int>(cached.size());
  m.block_size = kBlockSize;
  int maxb = 0;
  for (size_t s = 0; s < cached.size(); ++s)
    maxb = std::max(maxb, (cached[s] + fresh[s] + kBlockSize - 1) / kBlockSize);
  int width = maxb + 1;
  if (pad_width) {
    width = 4;
    while (width < maxb) width *= 2;
  }
  m.max_blocks_per_seq = width;
  std::vector<int32_t> perm(num_blocks);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  int next = 0;
  m.query_start.push_back(0);
  for (size_t s = 0; s < cached.size(); ++s) {
    const int ctx = cached[s] + fresh[s];
    std::vector<int32_t> table(width, -1);
    for (int b = 0; b < (ctx + kBlockSize - 1) / kBlockSize; ++b) table[b] = perm[next++];
    m.block_tables.insert(m.block_tables.end(), table.begin(), table.end());
    for (int i = 0; i < fresh[s]; ++i) {
      const int pos = cached[s] + i;
      m.positions.push_back(pos);
      m.slot_mapping.push_back(table[pos / kBlockSize] * kBlockSize + pos % kBlockSize);
    }
    m.query_start.push_back(m.query_start.back() + fresh[s]);
    m.context_lens.push_back(ctx);
    m.max_context_len = std::max(m.max_context_len, ctx);
  }
  m.num_tokens = m.query_start.back();
  return m;
}

int blocks_for(const std::vector<int>& cached, const std::vector<int>& fresh) {
  int blocks = 3;  // a few no sequence owns
  for (size_t s = 0; s < cached.size(); ++s) blocks += (cached[s] + fresh[s] + kBlockSize - 1) / kBlockSize;
  return blocks;
}

// The rows to check: all when few, else the first and last 4 of every sequence and random others.
std::vector<int> rows_to_check(const StepMetadata& m, std::mt19937_64& rng) {
  std::vector<int> rows;
  if (m.num_tokens <= kMaxCheckedRows) {
    rows.resize(m.num_tokens);
    std::iota(rows.begin(), rows.end(), 0);
    return rows;
  }
  std::vector<char> picked(m.num_tokens, 0);
  for (int s = 0; s < m.num_seqs; ++s)
    for (int i = 0; i < 4; ++i)
      for (int t : {m.query_start[s] + i, m.query_start[s + 1] - 1 - i})
        if (t >= m.query_start[s] && t < m.query_start[s + 1]) picked[t] = 1;
  std::uniform_int_distribution<int> pick(0, m.num_tokens - 1);
  for (int n = static_cast<int>(std::count(picked.begin(), picked.end(), 1)); n < kMaxCheckedRows;) {
    const int t = pick(rng);
    if (!picked[t]) picked[t] = 1, ++n;
  }
  for (int t = 0; t < m.num_tokens; ++t)
    if (picked[t]) rows.push_back(t);
  return rows;
}

// The step of only `rows` of m (same sequences, tables and contexts): what the CPU runs.
StepMetadata sub_step(const StepMetadata& m, const std::vector<int>& rows) {
  StepMetadata r = m;
  r.positions.clear();
  r.slot_mapping.clear();
  r.query_start.assign(1, 0);
  size_t i = 0;
  for (int s = 0; s < m.num_seqs; ++s) {
    for (; i < rows.size() && rows[i] < m.query_start[s + 1]; ++i) {
      r.positions.push_back(m.positions[rows[i]]);
      r.slot_mapping.push_back(m.slot_mapping[rows[i]]);
    }
    r.query_start.push_back(static_cast<int32_t>(r.positions.size()));
  }
  r.num_tokens = static_cast<int32_t>(r.positions.size());
  return r;
}

struct AttnShape {
  int hq, hkv, d;
  int window = 0;
  float softcap = 0.0f;
};

std::string shape_label(const AttnShape& a) {
  std::string s = "Hq" + std::to_string(a.hq) + "/" + std::to_string(a.hkv) + " D" + std::to_string(a.d);
  if (a.window > 0) s += " win" + std::to_string(a.window);
  if (a.softcap > 0.0f) s += " cap" + std::to_string(static_cast<int>(a.softcap));
  return s;
}

AttentionParams params_of(const AttnShape& a) {
  AttentionParams p;
  p.q_heads = a.hq;
  p.kv_heads = a.hkv;
  p.head_dim = a.d;
  p.scale = 1.0f / std::sqrt(static_cast<float>(a.d));
  p.sliding_window = a.window;
  p.softcap = a.softcap;
  return p;
}

// The same K/V cache on both backends: CPU f32 [blocks, bs, Hkv, D], GPU bf16;
// with --kv-fp8 the same e4m3 bytes on both (scales kKvFp8KScale, kKvFp8VScale).
struct Caches {
  KvLayer cpu, gpu;
};
Caches make_caches(Allocs& ca, Allocs& ga, const AttnShape& a, int num_blocks, uint64_t seed) {
  Caches c;
  const size_t n = static_cast<size_t>(num_blocks) * kBlockSize * a.hkv * a.d;
  if (g_kv_fp8) {
    std::vector<uint8_t> bytes(n);
    for (int kv = 0; kv < 2; ++kv) {
      const float scale = kv == 0 ? kKvFp8KScale : kKvFp8VScale;
      Tensor tc = ca.make(DType::kF8E4M3, {num_blocks, kBlockSize, a.hkv, a.d});
      Tensor tg = ga.make(DType::kF8E4M3, {num_blocks, kBlockSize, a.hkv, a.d});
      parallel_ranges(n, [&](size_t b, size_t e) {
        for (size_t i = b; i < e; ++i) bytes[i] = kv_fp8_encode(bf16_to_f32(value_bf16(seed + kv, i, 1.0f)), scale);
      });
      ca.b.copy_from_host(tc, bytes.data(), n);
      ga.b.copy_from_host(tg, bytes.data(), n);
      KvLayer& lc = c.cpu;
      KvLayer& lg = c.gpu;
      (kv == 0 ? lc.k : lc.v) = tc;
      (kv == 0 ? lg.k : lg.v) = tg;
    }
    c.cpu.k_scale = c.gpu.k_scale = kKvFp8KScale;
    c.cpu.v_scale = c.gpu.v_scale = kKvFp8VScale;
    return c;
  }
  std::vector<uint16_t> host(n);
  for (int kv = 0; kv < 2; ++kv) {
    Tensor tc = ca.make(DType::kF32, {num_blocks, kBlockSize, a.hkv, a.d});
    Tensor tg = ga.make(DType::kBF16, {num_blocks, kBlockSize, a.hkv, a.d});
    float* f = tc.as<float>();  // CPU tensors are host memory
    parallel_ranges(n, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) {
        host[i] = value_bf16(seed + kv, i, 1.0f);
        f[i] = bf16_to_f32(host[i]);
      }
    });
    ga.b.copy_from_host(tg, host.data(), n * sizeof(uint16_t));
    (kv == 0 ? c.cpu.k : c.cpu.v) = tc;
    (kv == 0 ? c.gpu.k : c.gpu.v) = tg;
  }
  return c;
}

constexpr float kQScale = 8.0f;  // q in [-8, 8): q·k scaled has std ~2.7 (k in [-1, 1))

// q/k/v rows [T, W] on the GPU (into *gpu_qkv when it is allocated already); the
// CPU gets only `rows` (in order), same values.
void make_qkv(Allocs& ca, Allocs& ga, const AttnShape& a, int T, const std::vector<int>& rows, uint64_t seed,
              Tensor* cpu_qkv, Tensor* gpu_qkv) {
  const int64_t W = static_cast<int64_t>(a.hq + 2 * a.hkv) * a.d;
  std::vector<uint16_t> host(static_cast<size_t>(T) * W);
  parallel_ranges(host.size(), [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) host[i] = value_bf16(seed, i, kQScale);
  });
  if (gpu_qkv->empty()) *gpu_qkv = ga.make(DType::kBF16, {T, W});
  ga.b.copy_from_host(*gpu_qkv, host.data(), host.size() * sizeof(uint16_t));
  *cpu_qkv = ca.make(DType::kF32, {static_cast<int64_t>(rows.size()), W});
  float* f = cpu_qkv->as<float>();
  for (size_t r = 0; r < rows.size(); ++r)
    for (int64_t c = 0; c < W; ++c) f[r * W + c] = bf16_to_f32(host[static_cast<size_t>(rows[r]) * W + c]);
}

struct Err {
  double max_abs = 0.0, max_ref = 1e-6;
  bool bad = false;  // NaN or a size mismatch
  double rel() const { return bad ? INFINITY : max_abs / max_ref; }
};

// Rows `rows` of the GPU output [T, Hq D] bf16 against the CPU's [rows, Hq D] f32.
Err compare_rows(Backend& gpu, const Tensor& gout, const Tensor& cout, const std::vector<int>& rows) {
  const int64_t width = gout.dim(1);
  std::vector<uint16_t> row(width);
  Err e;
  for (size_t r = 0; r < rows.size(); ++r) {
    gpu.copy_to_host(row.data(), gout.rows(rows[r], 1), width * sizeof(uint16_t));
    const float* ref = cout.as<float>() + r * width;
    for (int64_t i = 0; i < width; ++i) {
      const float g = bf16_to_f32(row[i]);
      if (!std::isfinite(g)) e.bad = true;
      e.max_abs = std::max(e.max_abs, std::abs(static_cast<double>(g) - ref[i]));
      e.max_ref = std::max(e.max_ref, std::abs(static_cast<double>(ref[i])));
    }
  }
  return e;
}

int report_line(const std::string& op, const std::string& what, const Err& e, size_t checked, int tokens,
                double seconds) {
  const bool ok = e.rel() <= kTol;
  std::printf("%-14s %-58s rows %3zu/%-6d max_abs %-10.3g rel %-10.3g tol %-5.3g %5.1fs %s\n", op.c_str(),
              what.c_str(), checked, tokens, e.max_abs, e.rel(), kTol, seconds, ok ? "ok" : "FAIL");
  std::fflush(stdout);
  return ok ? 0 : 1;
}

// One attention step through both backends.
int attention_case(Backend& cpu, Backend& gpu, const std::string& label, const AttnShape& a,
                   const std::vector<int>& cached, const std::vector<int>& fresh, uint64_t seed) {
  const double t0 = now_s();
  std::mt19937_64 rng(seed);
  Allocs ca(cpu), ga(gpu);
  const int num_blocks = blocks_for(cached, fresh);
  const StepMetadata m = make_step(cached, fresh, num_blocks, /*pad_width=*/false, rng);
  const std::vector<int> rows = rows_to_check(m, rng);
  Caches kv = make_caches(ca, ga, a, num_blocks, seed * 7 + 1);
  Tensor qc, qg;
  make_qkv(ca, ga, a, m.num_tokens, rows, seed * 7 + 3, &qc, &qg);
  Tensor og = ga.make(DType::kBF16, {m.num_tokens, int64_t{a.hq} * a.d});
  Tensor oc = ca.make(DType::kF32, {static_cast<int64_t>(rows.size()), int64_t{a.hq} * a.d});
  {
    std::vector<uint8_t> nan(og.bytes(), 0xFF);  // bf16 NaN: an unwritten row fails
    gpu.copy_from_host(og, nan.data(), nan.size());
  }
  const AttentionParams p = params_of(a);
  gpu.set_step_metadata(m);
  gpu.attention(qg, kv.gpu, p, og);
  cpu.set_step_metadata(sub_step(m, rows));
  cpu.attention(qc, kv.cpu, p, oc);
  const Err e = compare_rows(gpu, og, oc, rows);
  return report_line("attention", label + " " + shape_label(a), e, rows.size(), m.num_tokens, now_s() - t0);
}

std::string seqs_label(const std::vector<int>& cached, const std::vector<int>& fresh) {
  std::string s;
  for (size_t i = 0; i < cached.size(); ++i) {
    if (i > 0) s += ",";
    s += cached[i] > 0 ? std::to_string(cached[i]) + "+" + std::to_string(fresh[i]) : std::to_string(fresh[i]);
  }
  return s;
}

// Decode steps of `batch` sequences as a step graph: recorded on the first round,
// replayed on the next with other contexts and tables of the same padded width
// (the runner's key), each round against the CPU.
int graph_decode_case(Backend& cpu, Backend& gpu, const AttnShape& a, int batch, int max_ctx, uint64_t seed) {
  const double t0 = now_s();
  std::mt19937_64 rng(seed);
  Allocs ca(cpu), ga(gpu);
  const int num_blocks = batch * ((max_ctx + kBlockSize - 1) / kBlockSize) + 3;
  Caches kv = make_caches(ca, ga, a, num_blocks, seed * 7 + 1);
  const AttentionParams p = params_of(a);
  int failures = 0;
  // Every round's widest context lies in (W/2, W] blocks for the runner's padded
  // width W: one width, one graph key.
  int width = 4;
  while (width * kBlockSize < max_ctx) width *= 2;
  std::uniform_int_distribution<int> ctx_of(std::max(1, width / 2 * kBlockSize + 1), max_ctx);
  // The graph reads and writes the tensors it was recorded with: one q and one out for every round.
  Tensor qg, og = ga.make(DType::kBF16, {batch, int64_t{a.hq} * a.d});
  for (int round = 0; round < 3; ++round) {
    std::vector<int> cached(batch), fresh(batch, 1);
    for (int& c : cached) c = std::uniform_int_distribution<int>(0, max_ctx - 1)(rng);
    cached[0] = ctx_of(rng) - 1;
    const StepMetadata m = make_step(cached, fresh, num_blocks, /*pad_width=*/true, rng);
    std::vector<int> rows(batch);
    std::iota(rows.begin(), rows.end(), 0);
    Tensor qc;
    make_qkv(ca, ga, a, batch, rows, seed * 7 + 3 + round, &qc, &qg);
    Tensor oc = ca.make(DType::kF32, {batch, int64_t{a.hq} * a.d});
    std::vector<uint8_t> nan(og.bytes(), 0xFF);
    gpu.copy_from_host(og, nan.data(), nan.size());
    const uint64_t key = 0x10C0000000ull + (static_cast<uint64_t>(batch) << 20) + m.max_blocks_per_seq;
    if (!gpu.begin_graph(key)) {
      std::printf("graph decode   begin_graph unsupported FAIL\n");
      return failures + 1;
    }
    const bool replay = gpu.replaying_graph();
    gpu.set_step_metadata(m);
    if (!replay) gpu.attention(qg, kv.gpu, p, og);
    gpu.end_graph();
    cpu.set_step_metadata(m);
    cpu.attention(qc, kv.cpu, p, oc);
    const Err e = compare_rows(gpu, og, oc, rows);
    const std::string what = "decode b" + std::to_string(batch) + " ctx<=" + std::to_string(max_ctx) + " width " +
                             std::to_string(m.max_blocks_per_seq) + (replay ? " replay " : " record ") +
                             shape_label(a);
    if (round > 0 && !replay) {
      std::printf("graph decode   %s: round %d was recorded again FAIL\n", what.c_str(), round);
      ++failures;
    }
    failures += report_line("graph attn", what, e, rows.size(), batch, now_s() - t0);
  }
  return failures;
}

}  // namespace

int run_long_attention_checks(Backend& cpu, Backend& gpu, const std::string& prefill_variant_tag) {
  int failures = 0;
  uint64_t seed = 100;
  const bool variant = !prefill_variant_tag.empty();
  // A variant changes the prefill kernel at head dim 128 only.
  auto skip = [&](const AttnShape& a) { return variant && a.d != 128; };
  auto name = [&](const std::string& s) { return variant ? prefill_variant_tag + " " + s : s; };
  std::printf("-- long-context attention through the backends (CPU: sampled rows)%s --\n",
              variant ? (" " + prefill_variant_tag + ", head dim 128 only").c_str() : "");
  // The families' GQA ratios: 1 (16/16), 2 (Gemma 2: 16/8, D 256), 3 (Llama-3.2-3B: 24/8),
  // 4 (Llama-3.1-8B: 32/8), 7 (Qwen2.5-7B: 28/4), 8 (Qwen2.5-3B: 16/2).
  const AttnShape gqa[] = {{16, 16, 128}, {16, 8, 256}, {24, 8, 128}, {32, 8, 128}, {28, 4, 128}, {16, 2, 128}};
  for (const AttnShape& a : gqa)
    for (int len : {1, 7, 100, 1000, 4096, 32768}) {
      ++seed;
      if (!skip(a)) failures += attention_case(cpu, gpu, name("prefill " + std::to_string(len)), a, {0}, {len}, seed);
    }
  // Chunked prefill against cached prefixes (the prefix cache's hits look the same).
  const AttnShape g3{24, 8, 128}, g7{28, 4, 128}, g8{16, 2, 128};
  struct Chunk {
    AttnShape a;
    int cached, fresh;
  };
  for (const Chunk& c : {Chunk{g3, 100, 37}, Chunk{g3, 4090, 130}, Chunk{g3, 30000, 2048}, Chunk{g3, 32000, 767},
                         Chunk{g7, 15, 1000}, Chunk{g7, 24576, 2048}, Chunk{g8, 16384, 4096}, Chunk{g3, 20000, 2}})
    failures += attention_case(cpu, gpu,
                               name("chunk " + std::to_string(c.fresh) + " after " + std::to_string(c.cached)), c.a,
                               {c.cached}, {c.fresh}, ++seed);
  // Prefill chunks and decodes on one step (both kernels, half the scratch each).
  struct Mixed {
    AttnShape a;
    std::vector<int> cached, fresh;
  };
  const std::vector<Mixed> mixed = {
      {g3, {20000, 5000, 300, 0, 32000, 9}, {1000, 1, 1, 700, 1, 2}},
      {g7, {0, 12000, 1}, {3000, 1, 1}},
      {g8, {31000, 100, 2047}, {1, 1, 1}},  // decode only, eager
  };
  for (const Mixed& x : mixed)
    failures +=
        attention_case(cpu, gpu, name("mixed " + seqs_label(x.cached, x.fresh)), x.a, x.cached, x.fresh, ++seed);
  // Sliding windows and soft-caps: Mistral (window 4096), Gemma 2 (window 4096 and
  // soft-cap 50, D 256), Gemma 3 (window 1024, D 256), a soft-cap alone.
  const AttnShape mistral{32, 8, 128, 4096, 0.0f}, gemma2{16, 8, 256, 4096, 50.0f}, gemma3{8, 4, 256, 1024, 0.0f},
      capped{24, 8, 128, 0, 30.0f};
  for (const AttnShape& a : {mistral, gemma2, gemma3, capped}) {
    seed += 3;
    if (skip(a)) continue;
    failures += attention_case(cpu, gpu, name("prefill 8192"), a, {0}, {8192}, seed - 2);
    failures += attention_case(cpu, gpu, name("chunk 2048 after 10000"), a, {10000}, {2048}, seed - 1);
    failures += attention_case(cpu, gpu, name("mixed 5000+1,0+3000,20000+1"), a, {5000, 0, 20000}, {1, 3000, 1}, seed);
  }
  ++seed;
  if (!skip(gemma2)) failures += attention_case(cpu, gpu, "prefill 32768", gemma2, {0}, {32768}, seed);
  if (variant) return failures;
  // Decode steps as step graphs (recorded, then replayed with other contexts).
  std::printf("-- decode attention in step graphs --\n");
  failures += graph_decode_case(cpu, gpu, g3, 1, 32768, ++seed);
  failures += graph_decode_case(cpu, gpu, g3, 16, 20000, ++seed);
  failures += graph_decode_case(cpu, gpu, gemma2, 4, 9000, ++seed);
  failures += graph_decode_case(cpu, gpu, g7, 64, 3000, ++seed);
  return failures;
}

int run_short_decode_attention_checks(Backend& cpu, Backend& gpu) {
  int failures = 0;
  uint64_t seed = 900;
  std::printf("-- short decode attention: decode-only steps of 1-4 sequences --\n");
  // Head dims 64/128/256 × GQA groups 1, 2, 3, 4, 8 (and Qwen2.5-7B's 7).
  const AttnShape shapes[] = {{8, 8, 64},    {16, 8, 64},   {24, 8, 64},  {16, 4, 64},   {16, 2, 64},
                              {16, 16, 128}, {16, 8, 128},  {24, 8, 128}, {32, 8, 128},  {28, 4, 128},
                              {16, 2, 128},  {8, 8, 256},   {8, 4, 256},  {12, 4, 256},  {16, 4, 256},
                              {16, 2, 256}};
  // Contexts per sequence (the step adds one token to each): 1 … 4096 keys.
  const std::vector<std::vector<int>> contexts = {{1}, {2}, {17}, {128}, {1000}, {4096}, {5, 300},
                                                  {1, 64, 2047}, {15, 16, 17, 4095}};
  auto decode = [&](const AttnShape& a, const std::vector<int>& ctx) {
    std::vector<int> cached(ctx.size()), fresh(ctx.size(), 1);
    for (size_t s = 0; s < ctx.size(); ++s) cached[s] = ctx[s] - 1;
    std::string label = "decode ctx ";
    for (size_t s = 0; s < ctx.size(); ++s) label += (s ? "," : "") + std::to_string(ctx[s]);
    return attention_case(cpu, gpu, label, a, cached, fresh, ++seed);
  };
  for (const AttnShape& a : shapes)
    for (const std::vector<int>& ctx : contexts) {
      // The long contexts once per head dim and group size class.
      if ((ctx == std::vector<int>{4096} || ctx == std::vector<int>{15, 16, 17, 4095}) && a.hq / a.hkv != 2 &&
          a.hq / a.hkv != 7 && a.hq / a.hkv != 3)
        continue;
      failures += decode(a, ctx);
    }
  // Sliding windows (across the split boundaries and shorter than a batch) and soft-caps.
  const AttnShape windowed[] = {{32, 8, 128, 100, 0.0f}, {16, 8, 256, 64, 50.0f}, {8, 4, 256, 1024, 0.0f},
                                {24, 8, 128, 0, 30.0f},   {16, 2, 64, 33, 20.0f},  {8, 8, 64, 3, 0.0f}};
  for (const AttnShape& a : windowed)
    for (const std::vector<int>& ctx : std::vector<std::vector<int>>{{50}, {101}, {1500}, {1, 64, 65, 3000}})
      failures += decode(a, ctx);
  // As step graphs: recorded once, replayed with other contexts of the same table width.
  std::printf("-- short decode attention in step graphs --\n");
  for (int batch = 1; batch <= 4; ++batch) {
    failures += graph_decode_case(cpu, gpu, AttnShape{8, 4, 256, 1024, 0.0f}, batch, 2000, ++seed);
    failures += graph_decode_case(cpu, gpu, AttnShape{24, 8, 128}, batch, 1000, ++seed);
  }
  failures += graph_decode_case(cpu, gpu, AttnShape{16, 2, 64, 0, 30.0f}, 3, 4000, ++seed);
  return failures;
}

namespace {

struct Greedy {
  std::vector<int32_t> argmax;  // per checked prompt position, then per decode step
  std::vector<double> margin;   // top-1 minus top-2 logit
};

// Argmax and top-2 margin of each row of logits [R, V] f32.
void argmax_rows(Backend& gpu, const Tensor& logits, Greedy* g) {
  const int64_t R = logits.dim(0), V = logits.dim(1);
  std::vector<float> h(static_cast<size_t>(R * V));
  gpu.copy_to_host(h.data(), logits, h.size() * sizeof(float));
  for (int64_t r = 0; r < R; ++r) {
    const float* row = h.data() + r * V;
    int64_t best = 0;
    for (int64_t i = 1; i < V; ++i)
      if (row[i] > row[best]) best = i;
    float second = -INFINITY;
    for (int64_t i = 0; i < V; ++i)
      if (i != best) second = std::max(second, row[i]);
    g->argmax.push_back(static_cast<int32_t>(best));
    g->margin.push_back(static_cast<double>(row[best]) - second);
  }
}

constexpr int kDecodeSteps = 8;

// The prompt in steps of `chunk` tokens (chunk >= prompt: one step), then
// kDecodeSteps greedy decode steps; logits at the positions `check` and each decode.
StatusOr<Greedy> run_prompt(Model& model, Backend& gpu, const std::vector<int32_t>& prompt,
                            const std::vector<int32_t>& table, const std::vector<int>& check, int chunk) {
  Greedy g;
  const int N = static_cast<int>(prompt.size()), bs = model.block_size();
  std::vector<int32_t> ids = prompt;
  auto step = [&](int first, int n, const std::vector<int32_t>& rows) -> Status {
    StepMetadata m;
    m.num_tokens = n;
    m.num_seqs = 1;
    m.block_size = bs;
    m.max_blocks_per_seq = static_cast<int>(table.size());
    m.max_context_len = first + n;
    for (int i = first; i < first + n; ++i) {
      m.positions.push_back(i);
      m.slot_mapping.push_back(table[i / bs] * bs + i % bs);
    }
    m.query_start = {0, n};
    m.context_lens = {first + n};
    m.block_tables = table;
    KR_ASSIGN_OR_RETURN(Tensor logits, model.forward(m, std::span<const int32_t>(ids.data() + first, n), rows));
    if (!rows.empty()) argmax_rows(gpu, logits, &g);
    return Status::Ok();
  };
  for (int first = 0; first < N; first += chunk) {
    const int n = std::min(chunk, N - first);
    std::vector<int32_t> rows;
    for (int p : check)
      if (p >= first && p < first + n) rows.push_back(p - first);
    KR_RETURN_IF_ERROR(step(first, n, rows));
  }
  for (int i = 0; i < kDecodeSteps; ++i) {
    ids.push_back(g.argmax.back());  // the last position's (or decode step's) greedy token
    KR_RETURN_IF_ERROR(step(N + i, 1, {0}));
  }
  return g;
}

}  // namespace

int run_long_prompt_greedy_check(Backend& gpu, int prompt_len) {
  const double t0 = now_s();
  std::printf("-- greedy outputs of a long prompt: one-shot vs chunked prefill (llama-3.2-3b shape, dummy weights) --\n");
  ModelOptions opt;
  opt.arch = "llama-3.2-3b";
  opt.dummy_weights = true;
  opt.max_tokens_per_step = prompt_len;
  opt.max_logit_rows = 80;
  opt.max_kv_tokens = prompt_len + kDecodeSteps + 2 * kBlockSize;
  auto model_or = load_model("", gpu, opt);
  if (!model_or.ok()) {
    std::printf("greedy long    load failed: %s FAIL\n", model_or.status().to_string().c_str());
    return 1;
  }
  Model& model = **model_or;
  std::mt19937_64 rng(2024);
  std::vector<int32_t> prompt(prompt_len);
  std::uniform_int_distribution<int32_t> tok(0, model.config().vocab_size - 1);
  for (int32_t& t : prompt) t = tok(rng);
  // The whole cache in a shuffled order: the same table for every run.
  const int blocks = (prompt_len + kDecodeSteps + kBlockSize - 1) / kBlockSize;
  std::vector<int32_t> table(blocks);
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), rng);
  // Checked positions: 63 spread over the prompt, and its last.
  std::vector<int> check;
  for (int k = 1; k < 64; ++k) check.push_back(static_cast<int>(static_cast<int64_t>(prompt_len) * k / 64));
  check.push_back(prompt_len - 1);
  check.erase(std::unique(check.begin(), check.end()), check.end());
  auto one = run_prompt(model, gpu, prompt, table, check, prompt_len);
  if (!one.ok()) {
    std::printf("greedy long    one-shot forward failed: %s FAIL\n", one.status().to_string().c_str());
    return 1;
  }
  constexpr double kMargin = 0.15;
  int failures = 0;
  for (int chunk : {2048, 1500}) {
    auto ch = run_prompt(model, gpu, prompt, table, check, chunk);
    if (!ch.ok()) {
      std::printf("greedy long    chunked forward failed: %s FAIL\n", ch.status().to_string().c_str());
      ++failures;
      continue;
    }
    int checked = 0, wrong = 0, small = 0;
    const size_t P = check.size();
    for (size_t i = 0; i < one->argmax.size(); ++i) {
      // Decode steps compare only while the generated tokens so far agree.
      if (i >= P && one->argmax[i - 1] != ch->argmax[i - 1]) break;
      if (one->margin[i] <= kMargin) {
        ++small;
        continue;
      }
      ++checked;
      if (one->argmax[i] != ch->argmax[i]) {
        ++wrong;
        std::printf("greedy long    chunk %d: %s %zu: one-shot %d, chunked %d (margin %.3f)\n", chunk,
                    i < P ? "position" : "decode step", i < P ? static_cast<size_t>(check[i]) : i - P,
                    one->argmax[i], ch->argmax[i], one->margin[i]);
      }
    }
    const bool ok = wrong == 0 && checked > 0;
    failures += ok ? 0 : 1;
    std::printf("%-14s %-58s equal at %d/%d (margin > %.2f; %d under it) %5.1fs %s\n", "greedy long",
                ("prompt " + std::to_string(prompt_len) + ": one-shot vs chunks of " + std::to_string(chunk) +
                 " + " + std::to_string(kDecodeSteps) + " decodes")
                    .c_str(),
                checked - wrong, checked, kMargin, small, now_s() - t0, ok ? "ok" : "FAIL");
    std::fflush(stdout);
  }
  return failures;
}

}  // namespace kr
