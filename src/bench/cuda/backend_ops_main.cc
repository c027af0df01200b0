// kr-backend-ops: every CUDA op against the CPU reference on fresh random
// inputs (several shapes, the Llama-3.2-3B shapes and odd sizes included);
// every fused op three ways (the CUDA override, the CUDA backend's composed
// default, the CPU) at batch 1 and larger batches; the model's decode layer as
// the forward issues it; then the tiny fixture model on the GPU against its
// golden argmaxes, as prefill and token by token (eager and as step graphs).
// Inputs are rounded to bf16 first so that both backends see the same values;
// CUDA outputs are NaN-poisoned before each op. Prints a table; exit status 1
// on any failure, 2 when no GPU is present.
//
// Usage: kr-backend-ops [--fixture DIR] [--golden FILE] [--families DIR]
// GCC 12 reports a false -Wrestrict inside std::string's operator+ when it inlines
// "literal" + std::to_string(...) chains (GCC bug 105329); CI builds with -Werror.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/dtype_convert.h"
#include "model/model.h"

namespace kr {
namespace {

std::mt19937_64 g_rng(42);
int g_failures = 0;

std::vector<float> random_bf16_values(size_t n, float scale) {
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = bf16_to_f32(f32_to_bf16(d(g_rng)));
  return v;
}

std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = f32_to_bf16(v[i]);
  return o;
}

// A tensor on both backends with the same (bf16-exact) values.
struct Pair {
  Tensor cpu, gpu;
};

struct Ctx {
  Backend& cpu;
  Backend& gpu;
  std::vector<Tensor> cpu_allocs, gpu_allocs;

  Ctx(Backend& c, Backend& g) : cpu(c), gpu(g) {}
  ~Ctx() {
    for (Tensor& t : cpu_allocs) cpu.free(t);
    for (Tensor& t : gpu_allocs) gpu.free(t);
  }
  Pair act(std::initializer_list<int64_t> dims, const std::vector<float>& values) {
    Pair p{cpu.alloc(DType::kF32, dims), gpu.alloc(DType::kBF16, dims)};
    cpu_allocs.push_back(p.cpu);
    gpu_allocs.push_back(p.gpu);
    if (!values.empty()) {
      cpu.copy_from_host(p.cpu, values.data(), values.size() * 4);
      const auto b = to_bf16(values);
      gpu.copy_from_host(p.gpu, b.data(), b.size() * 2);
    }
    return p;
  }
  Pair f32(std::initializer_list<int64_t> dims, const std::vector<float>& values = {}) {
    Pair p{cpu.alloc(DType::kF32, dims), gpu.alloc(DType::kF32, dims)};
    cpu_allocs.push_back(p.cpu);
    gpu_allocs.push_back(p.gpu);
    if (!values.empty()) {
      cpu.copy_from_host(p.cpu, values.data(), values.size() * 4);
      gpu.copy_from_host(p.gpu, values.data(), values.size() * 4);
    }
    return p;
  }
  // Llama-3-style RoPE tables (base 500000) of head_dim D on both backends.
  std::pair<RopeParams, RopeParams> rope(int D) {
    std::vector<float> inv;
    for (int i = 0; i < D / 2; ++i) inv.push_back(static_cast<float>(std::pow(500000.0, -2.0 * i / D)));
    const Pair t = f32({D / 2}, inv);
    RopeParams rc, rg;
    rc.head_dim = rg.head_dim = D;
    rc.inv_freq = t.cpu;
    rg.inv_freq = t.gpu;
    return {rc, rg};
  }
  Pair ints(std::initializer_list<int64_t> dims, const std::vector<int32_t>& values) {
    Pair p{cpu.alloc(DType::kI32, dims), gpu.alloc(DType::kI32, dims)};
    cpu_allocs.push_back(p.cpu);
    gpu_allocs.push_back(p.gpu);
    cpu.copy_from_host(p.cpu, values.data(), values.size() * 4);
    gpu.copy_from_host(p.gpu, values.data(), values.size() * 4);
    return p;
  }
  // Weights: bf16 host data, uploaded by each backend (the CPU keeps the pointer).
  std::vector<std::unique_ptr<std::vector<uint16_t>>> host_weights;
  Pair weight(std::initializer_list<int64_t> dims, const std::vector<float>& values) {
    host_weights.push_back(std::make_unique<std::vector<uint16_t>>(to_bf16(values)));
    Tensor host(host_weights.back()->data(), DType::kBF16, dims);
    Pair p{cpu.upload_weight(host), gpu.upload_weight(host)};
    gpu_allocs.push_back(p.gpu);
    return p;
  }
  void poison(Tensor& gpu_t) {
    std::vector<uint8_t> nan(gpu_t.bytes(), 0xFF);  // all-ones: NaN in bf16 and f32
    gpu.copy_from_host(gpu_t, nan.data(), nan.size());
  }
  std::vector<float> read(const Pair& p, bool from_gpu) {
    const Tensor& t = from_gpu ? p.gpu : p.cpu;
    std::vector<float> out(t.numel());
    if (t.dtype == DType::kBF16) {
      std::vector<uint16_t> b(t.numel());
      gpu.copy_to_host(b.data(), t, b.size() * 2);
      for (size_t i = 0; i < b.size(); ++i) out[i] = bf16_to_f32(b[i]);
    } else {
      (from_gpu ? gpu : cpu).copy_to_host(out.data(), t, out.size() * 4);
    }
    return out;
  }
};

// Max abs error relative to the reference's largest magnitude; NaN counts as failure.
void report(const std::string& op, const std::string& shape, const std::vector<float>& ref,
            const std::vector<float>& got, double tol) {
  double max_err = 0.0, max_ref = 1e-6;
  bool bad = ref.size() != got.size();
  for (size_t i = 0; i < ref.size() && !bad; ++i) {
    if (!std::isfinite(got[i])) {
      bad = true;
      break;
    }
    max_err = std::max(max_err, std::abs(static_cast<double>(ref[i]) - got[i]));
    max_ref = std::max(max_ref, std::abs(static_cast<double>(ref[i])));
  }
  const double rel = bad ? INFINITY : max_err / max_ref;
  const bool ok = rel <= tol;
  if (!ok) ++g_failures;
  std::printf("%-14s %-34s max_abs %-10.3g rel %-10.3g tol %-7.3g %s\n", op.c_str(), shape.c_str(), max_err, rel, tol,
              ok ? "ok" : "FAIL");
}

// The options of a family that the ops run with (the ArchSpec values each
// family sets; model/arch_spec.h), to test every op and fused op in each form.
struct Flavor {
  const char* name;
  NormKind norm;
  bool qkv_bias;      // Qwen2
  bool qk_norm;       // Qwen3, Gemma 3
  bool post_norms;    // Gemma: norms of o_proj's and down_proj's outputs
  Activation act;
  int window;         // sliding window of attention (0: none)
  float softcap;      // attention soft-cap (0: none)
};
constexpr Flavor kLlama{"llama", NormKind::kTimesWeight, false, false, false, Activation::kSilu, 0, 0.0f};
constexpr Flavor kMistral{"mistral", NormKind::kTimesWeight, false, false, false, Activation::kSilu, 100, 0.0f};
constexpr Flavor kQwen2{"qwen2", NormKind::kTimesWeight, true, false, false, Activation::kSilu, 0, 0.0f};
constexpr Flavor kQwen3{"qwen3", NormKind::kTimesWeight, false, true, false, Activation::kSilu, 0, 0.0f};
constexpr Flavor kGemma2{"gemma2", NormKind::kTimesOnePlusWeight, false, false, true, Activation::kGeluTanh, 64, 5.0f};
constexpr Flavor kGemma3{"gemma3", NormKind::kTimesOnePlusWeight, false, true, true, Activation::kGeluTanh, 64, 0.0f};
constexpr const Flavor* kFlavors[] = {&kLlama, &kMistral, &kQwen2, &kQwen3, &kGemma2, &kGemma3};

const char* kind_name(NormKind k) { return k == NormKind::kTimesOnePlusWeight ? "(1+w)" : "w"; }
const char* act_name(Activation f) { return f == Activation::kGeluTanh ? "gelu" : "silu"; }

// Norm weights: around 1 for x̂ · w, around 0 for x̂ · (1 + w) (as trained models have them).
std::vector<float> norm_weights(size_t n, NormKind k) {
  std::vector<float> v = random_bf16_values(n, k == NormKind::kTimesOnePlusWeight ? 0.5f : 1.5f);
  return v;
}

void test_embedding(Ctx& c, int V, int H, int T, float scale) {
  Pair table = c.weight({V, H}, random_bf16_values(static_cast<size_t>(V) * H, 1.0f));
  std::vector<int32_t> idv(T);
  for (int& i : idv) i = static_cast<int>(g_rng() % V);
  Pair ids = c.ints({T}, idv);
  Pair out = c.act({T, H}, {});
  c.poison(out.gpu);
  c.cpu.embedding(table.cpu, ids.cpu, scale, out.cpu);
  c.gpu.embedding(table.gpu, ids.gpu, scale, out.gpu);
  report("embedding", "V" + std::to_string(V) + " H" + std::to_string(H) + " T" + std::to_string(T) + " x" +
         std::to_string(scale).substr(0, 6), c.read(out, false), c.read(out, true), scale == 1.0f ? 0.0 : 0.005);
}

void test_norm(Ctx& c, int T, int H, bool add, NormKind kind) {
  Pair x = c.act({T, H}, random_bf16_values(static_cast<size_t>(T) * H, 2.0f));
  Pair res = c.act({T, H}, random_bf16_values(static_cast<size_t>(T) * H, 2.0f));
  Pair w = c.weight({H}, norm_weights(H, kind));
  Pair out = c.act({T, H}, {});
  c.poison(out.gpu);
  const std::string shape = "T" + std::to_string(T) + " H" + std::to_string(H) + " " + kind_name(kind);
  const RmsNorm nc{&w.cpu, 1e-5f, kind}, ng{&w.gpu, 1e-5f, kind};
  if (add) {
    c.cpu.add_rms_norm(res.cpu, x.cpu, nc, out.cpu);
    c.gpu.add_rms_norm(res.gpu, x.gpu, ng, out.gpu);
    report("add_rms_norm", shape, c.read(out, false), c.read(out, true), 0.02);
    report("  residual", shape, c.read(res, false), c.read(res, true), 0.01);
  } else {
    c.cpu.rms_norm(x.cpu, nc, out.cpu);
    c.gpu.rms_norm(x.gpu, ng, out.gpu);
    report("rms_norm", shape, c.read(out, false), c.read(out, true), 0.02);
  }
}

void test_matmul(Ctx& c, int T, int K, int N, bool out_f32) {
  Pair x = c.act({T, K}, random_bf16_values(static_cast<size_t>(T) * K, 1.0f));
  Pair w = c.weight({N, K}, random_bf16_values(static_cast<size_t>(N) * K, 0.05f));
  Pair out = out_f32 ? c.f32({T, N}) : c.act({T, N}, {});
  c.poison(out.gpu);
  c.cpu.matmul(x.cpu, w.cpu, out.cpu);
  c.gpu.matmul(x.gpu, w.gpu, out.gpu);
  report(out_f32 ? "matmul->f32" : "matmul",
         "T" + std::to_string(T) + " K" + std::to_string(K) + " N" + std::to_string(N), c.read(out, false),
         c.read(out, true), out_f32 ? 0.005 : 0.02);
}

void test_silu_gather(Ctx& c, int T, int I, Activation f) {
  Pair gu = c.act({T, 2 * I}, random_bf16_values(static_cast<size_t>(T) * 2 * I, 4.0f));
  Pair out = c.act({T, I}, {});
  c.poison(out.gpu);
  c.cpu.silu_mul(gu.cpu, f, out.cpu);
  c.gpu.silu_mul(gu.gpu, f, out.gpu);
  report("silu_mul", std::string("T") + std::to_string(T) + " I" + std::to_string(I) + " " + act_name(f),
         c.read(out, false), c.read(out, true), 0.02);
  std::vector<int32_t> idxv = {T - 1, 0, T / 2};
  Pair idx = c.ints({3}, idxv);
  Pair g = c.act({3, 2 * I}, {});
  c.poison(g.gpu);
  c.cpu.gather_rows(gu.cpu, idx.cpu, g.cpu);
  c.gpu.gather_rows(gu.gpu, idx.gpu, g.gpu);
  report("gather_rows", "R3 W" + std::to_string(2 * I), c.read(g, false), c.read(g, true), 0.0);
}

// The final-logit soft-cap on f32 logits (Gemma 2's final_logit_softcapping).
void test_softcap(Ctx& c, int R, int V, float cap) {
  const std::vector<float> x = random_bf16_values(static_cast<size_t>(R) * V, 4.0f * cap);
  Pair l = c.f32({R, V}, x);
  c.cpu.softcap(l.cpu, cap);
  c.gpu.softcap(l.gpu, cap);
  report("softcap", "R" + std::to_string(R) + " V" + std::to_string(V) + " cap " + std::to_string(cap).substr(0, 4),
         c.read(l, false), c.read(l, true), 1e-5);
}

// A random paged layout: `cached[s]` tokens already in the cache, `fresh[s]` new tokens.
StepMetadata make_meta(const std::vector<int>& cached, const std::vector<int>& fresh, int block_size,
                       int num_blocks) {
  StepMetadata m;
  m.num_seqs = static_cast<int>(cached.size());
  m.block_size = block_size;
  int maxb = 0;
  for (size_t s = 0; s < cached.size(); ++s) maxb = std::max(maxb, (cached[s] + fresh[s] + block_size - 1) / block_size);
  m.max_blocks_per_seq = maxb + 1;  // one spare column of -1 padding
  std::vector<int32_t> perm(num_blocks);
  for (int i = 0; i < num_blocks; ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), g_rng);
  int next = 0;
  m.query_start.push_back(0);
  for (size_t s = 0; s < cached.size(); ++s) {
    const int ctx = cached[s] + fresh[s];
    std::vector<int32_t> table(m.max_blocks_per_seq, -1);
    for (int b = 0; b < (ctx + block_size - 1) / block_size; ++b) table[b] = perm[next++];
    m.block_tables.insert(m.block_tables.end(), table.begin(), table.end());
    for (int i = 0; i < fresh[s]; ++i) {
      const int pos = cached[s] + i;
      m.positions.push_back(pos);
      m.slot_mapping.push_back(table[pos / block_size] * block_size + pos % block_size);
    }
    m.query_start.push_back(m.query_start.back() + fresh[s]);
    m.context_lens.push_back(ctx);
    m.max_context_len = std::max(m.max_context_len, ctx);
  }
  m.num_tokens = m.query_start.back();
  return m;
}

// The q/k/v projection's bias and per-head norm weights of a flavor, on both backends.
struct QkvExtras {
  Pair bias, q_norm, k_norm;
  QkvParams params(bool cpu, const RopeParams& rope, int Hq, int Hkv, const Flavor& f) {
    QkvParams p{Hq, Hkv, &rope};
    if (f.qkv_bias) p.bias = cpu ? &bias.cpu : &bias.gpu;
    if (f.qk_norm) {
      p.q_norm = RmsNorm{cpu ? &q_norm.cpu : &q_norm.gpu, 1e-6f, f.norm};
      p.k_norm = RmsNorm{cpu ? &k_norm.cpu : &k_norm.gpu, 1e-6f, f.norm};
    }
    return p;
  }
};
QkvExtras qkv_extras(Ctx& c, int W, int D, const Flavor& f) {
  return QkvExtras{c.weight({W}, random_bf16_values(W, 0.5f)), c.weight({D}, norm_weights(D, f.norm)),
                   c.weight({D}, norm_weights(D, f.norm))};
}

AttentionParams attention_params(int Hq, int Hkv, int D, const Flavor& f) {
  AttentionParams p;
  p.q_heads = Hq;
  p.kv_heads = Hkv;
  p.head_dim = D;
  p.scale = 1.0f / std::sqrt(static_cast<float>(D));
  p.sliding_window = f.window;
  p.softcap = f.softcap;
  return p;
}

void test_attention(Ctx& c, const std::string& label, const std::vector<int>& cached, const std::vector<int>& fresh,
                    int Hq, int Hkv, int D, const Flavor& f = kLlama) {
  const int bs = 16;
  int blocks = 1;
  for (size_t s = 0; s < cached.size(); ++s) blocks += (cached[s] + fresh[s] + bs - 1) / bs;
  blocks += 3;
  const StepMetadata m = make_meta(cached, fresh, bs, blocks);
  const int T = m.num_tokens, W = (Hq + 2 * Hkv) * D;
  const size_t cache_elems = static_cast<size_t>(blocks) * bs * Hkv * D;
  // Old cache contents random everywhere (slots of new tokens get overwritten by store_kv).
  KvLayer kc{}, kg{};
  Pair k = c.act({blocks, bs, Hkv, D}, random_bf16_values(cache_elems, 1.0f));
  Pair v = c.act({blocks, bs, Hkv, D}, random_bf16_values(cache_elems, 1.0f));
  kc.k = k.cpu, kc.v = v.cpu, kg.k = k.gpu, kg.v = v.gpu;
  Pair qkv = c.act({T, W}, random_bf16_values(static_cast<size_t>(T) * W, 2.0f));
  const auto [rope_c, rope_g] = c.rope(D);
  QkvExtras ex = qkv_extras(c, W, D, f);
  c.cpu.set_step_metadata(m);
  c.gpu.set_step_metadata(m);
  const std::string shape = label + " Hq" + std::to_string(Hq) + "/" + std::to_string(Hkv) + " D" + std::to_string(D) +
                            " " + f.name;
  c.cpu.rope(qkv.cpu, ex.params(true, rope_c, Hq, Hkv, f));
  c.gpu.rope(qkv.gpu, ex.params(false, rope_g, Hq, Hkv, f));
  report("rope", shape, c.read(qkv, false), c.read(qkv, true), 0.02);
  // From here on both start from the same (GPU-rounded) rotated values.
  const std::vector<float> rotated = c.read(qkv, true);
  c.cpu.copy_from_host(qkv.cpu, rotated.data(), rotated.size() * 4);
  c.cpu.store_kv(qkv.cpu, Hq, Hkv, D, kc);
  c.gpu.store_kv(qkv.gpu, Hq, Hkv, D, kg);
  report("store_kv", shape, c.read(k, false), c.read(k, true), 0.0);
  Pair out = c.act({T, Hq * D}, {});
  c.poison(out.gpu);
  const AttentionParams ap = attention_params(Hq, Hkv, D, f);
  c.cpu.attention(qkv.cpu, kc, ap, out.cpu);
  c.gpu.attention(qkv.gpu, kg, ap, out.gpu);
  report("attention", shape + (f.window ? " win" + std::to_string(f.window) : "") +
                          (f.softcap > 0 ? " cap" : ""), c.read(out, false), c.read(out, true), 0.02);
}

// The three ways a fused op runs: on the CPU (its composed default), as the CUDA
// override, and as the CUDA backend's composed default (Backend::op called
// non-virtually, so the unfused CUDA ops run one after another).
enum class Way { kCpu, kCuda, kCudaComposed };
constexpr Way kWays[] = {Way::kCpu, Way::kCuda, Way::kCudaComposed};

// A tensor per way: CPU and CUDA tensors of `a`, and the CUDA tensor of `b` for
// the composed run (both made with the same values).
struct Triple {
  Pair a, b;
  Tensor& of(Way w) { return w == Way::kCpu ? a.cpu : w == Way::kCuda ? a.gpu : b.gpu; }
};
Triple triple(Ctx& c, std::initializer_list<int64_t> dims, const std::vector<float>& values) {
  Triple t{c.act(dims, values), c.act(dims, values)};
  if (values.empty()) {
    c.poison(t.a.gpu);
    c.poison(t.b.gpu);
  }
  return t;
}

// Reports output `t` of the CUDA override against the CPU and against the CUDA
// composed default. The override keeps the unfused arithmetic (same bf16
// roundings), so it must be close to the composition: only reduction order may
// differ (the norm prologue's sum of squares, the split-K GEMV's partial sums).
void report3(Ctx& c, const std::string& op, const std::string& shape, Triple& t, double tol) {
  const std::vector<float> cpu = c.read(t.a, false), fused = c.read(t.a, true);
  report(op, shape + " vs cpu", cpu, fused, tol);
  report(op.starts_with("  ") ? op : "  " + op, shape + " vs composed", c.read(t.b, true), fused, 0.01);
}

Backend& backend_of(Ctx& c, Way w) { return w == Way::kCpu ? c.cpu : c.gpu; }

std::string tokens_label(const StepMetadata& m) { return "T" + std::to_string(m.num_tokens); }

// qkv_rope_store over a batch of `fresh` tokens per sequence (1 each: decode),
// with and without the input norm (layer 0's form), in a family's form (bias,
// q/k norms, norm kind).
void test_qkv_rope_store(Ctx& c, const std::vector<int>& cached, const std::vector<int>& fresh, int H, int Hq,
                         int Hkv, int D, bool norm, const Flavor& f = kLlama) {
  const int bs = 16;
  int blocks = 3;
  for (size_t s = 0; s < cached.size(); ++s) blocks += (cached[s] + fresh[s] + bs - 1) / bs;
  const StepMetadata m = make_meta(cached, fresh, bs, blocks);
  const int T = m.num_tokens, W = (Hq + 2 * Hkv) * D;
  const size_t cache_elems = static_cast<size_t>(blocks) * bs * Hkv * D;
  const std::vector<float> k0 = random_bf16_values(cache_elems, 1.0f), v0 = random_bf16_values(cache_elems, 1.0f);
  Triple k = triple(c, {blocks, bs, Hkv, D}, k0), v = triple(c, {blocks, bs, Hkv, D}, v0);
  Pair x = c.act({T, H}, random_bf16_values(static_cast<size_t>(T) * H, 2.0f));
  Pair nw = c.weight({H}, norm_weights(H, f.norm));
  Pair w = c.weight({W, H}, random_bf16_values(static_cast<size_t>(W) * H, 0.05f));
  Triple qkv = triple(c, {T, W}, {}), normed = triple(c, {T, H}, {});
  const auto [rope_c, rope_g] = c.rope(D);
  QkvExtras ex = qkv_extras(c, W, D, f);
  c.cpu.set_step_metadata(m);
  c.gpu.set_step_metadata(m);
  for (Way way : kWays) {
    Backend& b = backend_of(c, way);
    const bool cpu = way == Way::kCpu;
    const Tensor& xt = cpu ? x.cpu : x.gpu;
    const MatmulInput in =
        norm ? MatmulInput::rms_normed(xt, RmsNorm{cpu ? &nw.cpu : &nw.gpu, 1e-5f, f.norm}, normed.of(way))
             : MatmulInput(xt);
    const Tensor& wt = cpu ? w.cpu : w.gpu;
    KvLayer kv{k.of(way), v.of(way)};
    const QkvParams p = ex.params(cpu, cpu ? rope_c : rope_g, Hq, Hkv, f);
    if (way == Way::kCudaComposed) {
      b.Backend::qkv_rope_store(in, wt, qkv.of(way), p, kv);
    } else {
      b.qkv_rope_store(in, wt, qkv.of(way), p, kv);
    }
  }
  const std::string shape = tokens_label(m) + (norm ? " norm" : "") + " H" + std::to_string(H) + " Hq" +
                            std::to_string(Hq) + "/" + std::to_string(Hkv) + " D" + std::to_string(D) + " " + f.name;
  report3(c, "qkv_rope_store", shape, qkv, 0.02);
  report3(c, "  k cache", shape, k, 0.02);
  report3(c, "  v cache", shape, v, 0.02);
  if (norm) report3(c, "  normed", shape, normed, 0.02);
}

void test_matmul_silu_mul(Ctx& c, int T, int K, int I, bool norm, const Flavor& f = kLlama) {
  Pair x = c.act({T, K}, random_bf16_values(static_cast<size_t>(T) * K, 2.0f));
  Pair nw = c.weight({K}, norm_weights(K, f.norm));
  Pair w = c.weight({2 * I, K}, random_bf16_values(static_cast<size_t>(2) * I * K, 0.05f));
  Triple gu = triple(c, {T, 2 * I}, {}), act = triple(c, {T, I}, {}), normed = triple(c, {T, K}, {});
  for (Way way : kWays) {
    Backend& b = backend_of(c, way);
    const bool cpu = way == Way::kCpu;
    const Tensor& xt = cpu ? x.cpu : x.gpu;
    const MatmulInput in =
        norm ? MatmulInput::rms_normed(xt, RmsNorm{cpu ? &nw.cpu : &nw.gpu, 1e-5f, f.norm}, normed.of(way))
             : MatmulInput(xt);
    const Tensor& wt = cpu ? w.cpu : w.gpu;
    if (way == Way::kCudaComposed) {
      b.Backend::matmul_silu_mul(in, wt, f.act, gu.of(way), act.of(way));
    } else {
      b.matmul_silu_mul(in, wt, f.act, gu.of(way), act.of(way));
    }
  }
  const std::string shape = "T" + std::to_string(T) + (norm ? " norm" : "") + " K" + std::to_string(K) + " I" +
                            std::to_string(I) + " " + f.name;
  report3(c, "matmul_silu_mul", shape, gu, 0.02);
  report3(c, "  act", shape, act, 0.02);
  if (norm) report3(c, "  normed", shape, normed, 0.02);
}

void test_matmul_add_rms_norm(Ctx& c, int T, int K, int H, const Flavor& f = kLlama) {
  Pair x = c.act({T, K}, random_bf16_values(static_cast<size_t>(T) * K, 1.0f));
  Pair w = c.weight({H, K}, random_bf16_values(static_cast<size_t>(H) * K, 0.05f));
  Pair nw = c.weight({H}, norm_weights(H, f.norm)), onw = c.weight({H}, norm_weights(H, f.norm));
  Triple out = triple(c, {T, H}, {}), normed = triple(c, {T, H}, {});
  Triple residual = triple(c, {T, H}, random_bf16_values(static_cast<size_t>(T) * H, 2.0f));
  for (Way way : kWays) {
    Backend& b = backend_of(c, way);
    const bool cpu = way == Way::kCpu;
    const RmsNorm n{cpu ? &nw.cpu : &nw.gpu, 1e-5f, f.norm};
    const RmsNorm on = f.post_norms ? RmsNorm{cpu ? &onw.cpu : &onw.gpu, 1e-5f, f.norm} : RmsNorm{};
    const Tensor& xt = cpu ? x.cpu : x.gpu;
    const Tensor& wt = cpu ? w.cpu : w.gpu;
    if (way == Way::kCudaComposed) {
      b.Backend::matmul_add_rms_norm(xt, wt, out.of(way), on, residual.of(way), n, normed.of(way));
    } else {
      b.matmul_add_rms_norm(xt, wt, out.of(way), on, residual.of(way), n, normed.of(way));
    }
  }
  const std::string shape = "T" + std::to_string(T) + " K" + std::to_string(K) + " H" + std::to_string(H) + " " +
                            f.name;
  report3(c, "matmul_add_rms_norm", shape, out, 0.02);
  report3(c, "  residual", shape, residual, 0.02);
  report3(c, "  normed", shape, normed, 0.02);
}

// Two decoder layers of a decode step of `cached.size()` sequences, issued op by
// op as Model::forward issues them for the family (the first with its input norm
// inside the qkv projection, the second reading the norm the first one's last op
// left), with the fused ops as overrides (kCuda) or composed (kCudaComposed);
// every tensor the ops write must match the CPU.
void test_layers(Ctx& c, const std::vector<int>& cached, int H, int Hq, int Hkv, int D, int I,
                 const Flavor& f = kLlama) {
  const int bs = 16;
  int blocks = 3;
  for (int n : cached) blocks += (n + 1 + bs - 1) / bs;
  const StepMetadata m = make_meta(cached, std::vector<int>(cached.size(), 1), bs, blocks);
  const int T = m.num_tokens, W = (Hq + 2 * Hkv) * D;
  const size_t cache_elems = static_cast<size_t>(blocks) * bs * Hkv * D;
  struct Layer {
    Pair in_norm, mlp_norm, attn_out_norm, mlp_out_norm, wqkv, wo, wgu, wdown;
    QkvExtras ex;
    Triple k, v;
  };
  std::vector<Layer> layers;
  for (int l = 0; l < 2; ++l) {
    const std::vector<float> k0 = random_bf16_values(cache_elems, 1.0f), v0 = random_bf16_values(cache_elems, 1.0f);
    layers.push_back(Layer{c.weight({H}, norm_weights(H, f.norm)), c.weight({H}, norm_weights(H, f.norm)),
                           c.weight({H}, norm_weights(H, f.norm)), c.weight({H}, norm_weights(H, f.norm)),
                           c.weight({W, H}, random_bf16_values(static_cast<size_t>(W) * H, 0.05f)),
                           c.weight({H, Hq * D}, random_bf16_values(static_cast<size_t>(H) * Hq * D, 0.05f)),
                           c.weight({2 * I, H}, random_bf16_values(static_cast<size_t>(2) * I * H, 0.05f)),
                           c.weight({H, I}, random_bf16_values(static_cast<size_t>(H) * I, 0.05f)),
                           qkv_extras(c, W, D, f), triple(c, {blocks, bs, Hkv, D}, k0),
                           triple(c, {blocks, bs, Hkv, D}, v0)});
  }
  Pair final_norm = c.weight({H}, norm_weights(H, f.norm));
  Triple residual = triple(c, {T, H}, random_bf16_values(static_cast<size_t>(T) * H, 2.0f));
  Triple normed = triple(c, {T, H}, {}), qkv = triple(c, {T, W}, {}), attn = triple(c, {T, Hq * D}, {});
  Triple proj = triple(c, {T, H}, {}), gu = triple(c, {T, 2 * I}, {}), act = triple(c, {T, I}, {});
  const auto [rope_c, rope_g] = c.rope(D);
  const float eps = 1e-5f;
  const AttentionParams ap = attention_params(Hq, Hkv, D, f);
  for (Way way : kWays) {
    Backend& b = backend_of(c, way);
    const bool cpu = way == Way::kCpu, composed = way == Way::kCudaComposed;
    auto P = [&](Pair& p) -> Tensor& { return cpu ? p.cpu : p.gpu; };
    auto N = [&](Pair& p) { return RmsNorm{&P(p), eps, f.norm}; };
    b.set_step_metadata(m);
    for (size_t l = 0; l < layers.size(); ++l) {
      Layer& L = layers[l];
      KvLayer kv{L.k.of(way), L.v.of(way)};
      const MatmulInput in = l == 0 ? MatmulInput::rms_normed(residual.of(way), N(L.in_norm), normed.of(way))
                                    : MatmulInput(normed.of(way));
      const RmsNorm next_norm = l + 1 < layers.size() ? N(layers[l + 1].in_norm) : N(final_norm);
      const RmsNorm attn_out = f.post_norms ? N(L.attn_out_norm) : RmsNorm{};
      const RmsNorm mlp_out = f.post_norms ? N(L.mlp_out_norm) : RmsNorm{};
      const QkvParams qp = L.ex.params(cpu, cpu ? rope_c : rope_g, Hq, Hkv, f);
      if (composed) {
        b.Backend::qkv_rope_store(in, P(L.wqkv), qkv.of(way), qp, kv);
        b.attention(qkv.of(way), kv, ap, attn.of(way));
        b.Backend::matmul_add_rms_norm(attn.of(way), P(L.wo), proj.of(way), attn_out, residual.of(way),
                                       N(L.mlp_norm), normed.of(way));
        b.Backend::matmul_silu_mul(normed.of(way), P(L.wgu), f.act, gu.of(way), act.of(way));
        b.Backend::matmul_add_rms_norm(act.of(way), P(L.wdown), proj.of(way), mlp_out, residual.of(way), next_norm,
                                       normed.of(way));
      } else {
        b.qkv_rope_store(in, P(L.wqkv), qkv.of(way), qp, kv);
        b.attention(qkv.of(way), kv, ap, attn.of(way));
        b.matmul_add_rms_norm(attn.of(way), P(L.wo), proj.of(way), attn_out, residual.of(way), N(L.mlp_norm),
                              normed.of(way));
        b.matmul_silu_mul(normed.of(way), P(L.wgu), f.act, gu.of(way), act.of(way));
        b.matmul_add_rms_norm(act.of(way), P(L.wdown), proj.of(way), mlp_out, residual.of(way), next_norm,
                              normed.of(way));
      }
    }
  }
  int max_ctx = 0;
  for (int n : cached) max_ctx = std::max(max_ctx, n + 1);
  const std::string shape = "B" + std::to_string(T) + " H" + std::to_string(H) + " Hq" + std::to_string(Hq) + "/" +
                            std::to_string(Hkv) + " D" + std::to_string(D) + " I" + std::to_string(I) + " ctx<=" +
                            std::to_string(max_ctx) + " " + f.name;
  // The last layer's tensors, both layers' caches and the stream after both.
  report3(c, "2 layers qkv", shape, qkv, 0.03);
  for (size_t l = 0; l < layers.size(); ++l) {
    report3(c, "  k cache " + std::to_string(l), shape, layers[l].k, 0.03);
    report3(c, "  v cache " + std::to_string(l), shape, layers[l].v, 0.03);
  }
  report3(c, "  attention", shape, attn, 0.03);
  report3(c, "  gate_up", shape, gu, 0.03);
  report3(c, "  act", shape, act, 0.03);
  report3(c, "  proj", shape, proj, 0.03);
  report3(c, "  residual", shape, residual, 0.03);
  report3(c, "  final norm", shape, normed, 0.03);
}

void test_argmax(Ctx& c, int R, int V) {
  std::vector<float> logits = random_bf16_values(static_cast<size_t>(R) * V, 8.0f);
  Pair l = c.f32({R, V});
  c.gpu.copy_from_host(l.gpu, logits.data(), logits.size() * 4);
  std::vector<int32_t> ids(R);
  std::vector<float> lps(R);
  const bool supported = c.gpu.argmax_logprob(l.gpu, ids.data(), lps.data());
  std::vector<float> want_lp(R), got_lp(R);
  int mismatches = supported ? 0 : 1;
  for (int r = 0; r < R; ++r) {
    const float* row = logits.data() + static_cast<size_t>(r) * V;
    const int best = static_cast<int>(std::max_element(row, row + V) - row);
    double sum = 0.0;
    for (int i = 0; i < V; ++i) sum += std::exp(static_cast<double>(row[i]) - row[best]);
    want_lp[r] = static_cast<float>(-std::log(sum));
    got_lp[r] = lps[r];
    mismatches += ids[r] != best;
  }
  report("argmax_logprob", "R" + std::to_string(R) + " V" + std::to_string(V) + " id_mismatch " + std::to_string(mismatches),
         want_lp, mismatches ? std::vector<float>(R, NAN) : got_lp, 1e-3);
}

// Step graphs: an embedding whose ids arrive by copy_from_host, recorded once and
// replayed with new ids (a replaying caller issues the copy and no op), must
// equal the eager op.
void test_graph(Ctx& c) {
  const int V = 512, H = 256, T = 3;
  Pair table = c.weight({V, H}, random_bf16_values(static_cast<size_t>(V) * H, 1.0f));
  Pair ids = c.ints({T}, {0, 0, 0});
  Pair out = c.act({T, H}, {});
  for (int round = 0; round < 3; ++round) {
    std::vector<int32_t> idv(T);
    for (int& i : idv) i = static_cast<int>(g_rng() % V);
    c.cpu.copy_from_host(ids.cpu, idv.data(), T * 4);
    c.cpu.embedding(table.cpu, ids.cpu, 1.0f, out.cpu);
    c.poison(out.gpu);
    c.gpu.synchronize();
    if (!c.gpu.begin_graph(77)) {
      ++g_failures;
      std::printf("graph: begin_graph unsupported FAIL\n");
      return;
    }
    c.gpu.copy_from_host(ids.gpu, idv.data(), T * 4);
    if ((round > 0) != c.gpu.replaying_graph()) {
      ++g_failures;
      std::printf("graph: replaying_graph() is %d in round %d FAIL\n", c.gpu.replaying_graph(), round);
    }
    if (!c.gpu.replaying_graph()) c.gpu.embedding(table.gpu, ids.gpu, 1.0f, out.gpu);
    c.gpu.end_graph();
    report("graph", round == 0 ? "embedding (recorded)" : "embedding (replay)", c.read(out, false), c.read(out, true), 0.0);
  }
}

// The tiny fixture on the GPU: argmax at every position must equal the golden
// one wherever the golden top-2 margin exceeds the threshold. Run as one prefill
// per case (every position's logits from one forward) and as token-by-token
// decode steps (batch 1: the fused GEMV path), eagerly and as step graphs (the
// first step of a case recorded, the others replayed).
enum class FixtureRun { kPrefill, kDecode, kDecodeGraphs };
void test_fixture(Backend& gpu, const std::string& dir, const std::string& golden_path, FixtureRun run) {
  const bool decode = run != FixtureRun::kPrefill;
  const char* label = run == FixtureRun::kPrefill ? "fixture" : run == FixtureRun::kDecode ? "fixture decode"
                                                                                            : "fixture graphs";
  ModelOptions opt;
  opt.max_kv_tokens = 4096;
  opt.max_logit_rows = 2048;  // logits of every position of the longest golden case
  auto model_or = load_model(dir, gpu, opt);
  if (!model_or.ok()) {
    std::printf("fixture        load failed: %s FAIL\n", model_or.status().to_string().c_str());
    ++g_failures;
    return;
  }
  Model& model = **model_or;
  std::ifstream f(golden_path);
  const nlohmann::json golden = nlohmann::json::parse(f, nullptr, false);
  if (golden.is_discarded() || !golden.contains("logits")) {
    std::printf("fixture        cannot read %s FAIL\n", golden_path.c_str());
    ++g_failures;
    return;
  }
  // bf16 activations against a float32 golden run: argmax flips were seen at golden
  // margins of 0.054-0.095 (5 of 2173 positions over 0.05), so the check uses 0.15
  // and the count over 0.05 is printed beside it.
  constexpr double kFixtureMargin = 0.15, kIssueMargin = 0.05;
  int checked = 0, wrong = 0, checked_05 = 0, wrong_05 = 0;
  const int bs = model.block_size();
  for (const auto& cs : golden["logits"]) {
    const std::vector<int32_t> ids = cs["ids"].get<std::vector<int32_t>>();
    const int T = static_cast<int>(ids.size());
    std::vector<int32_t> want(T, -1);
    std::vector<double> margin(T, 0.0);  // 0: not checked
    if (cs.contains("pos_argmax")) {
      want = cs["pos_argmax"].get<std::vector<int32_t>>();
      margin = cs["pos_margin"].get<std::vector<double>>();
    } else {
      // A reference with the last position's logits only (gemma3_vlm): its argmax and top-2 margin.
      const std::vector<double> last = cs["last_logits"].get<std::vector<double>>();
      const int best = static_cast<int>(std::max_element(last.begin(), last.end()) - last.begin());
      double second = -INFINITY;
      for (int i = 0; i < static_cast<int>(last.size()); ++i)
        if (i != best) second = std::max(second, last[i]);
      want[T - 1] = best;
      margin[T - 1] = last[best] - second;
    }
    std::vector<int32_t> got(T);
    std::vector<float> lp(T);
    std::vector<int32_t> table;
    for (int b = 0; b < (T + bs - 1) / bs; ++b) table.push_back(b);  // blocks 0.. in order
    // Steps of [first, first + n) tokens; prefill: one step of all, decode: one per token.
    for (int first = 0; first < T; first += decode ? 1 : T) {
      const int n = decode ? 1 : T;
      StepMetadata m;
      m.num_tokens = n;
      m.num_seqs = 1;
      m.block_size = bs;
      m.max_blocks_per_seq = static_cast<int>(table.size());
      m.max_context_len = first + n;
      for (int i = first; i < first + n; ++i) {
        m.positions.push_back(i);
        m.slot_mapping.push_back(i);
      }
      m.query_start = {0, n};
      m.context_lens = {first + n};
      m.block_tables = table;
      std::vector<int32_t> rows(n);
      for (int i = 0; i < n; ++i) rows[i] = i;
      // Key: the block-table width (one per case), as the runner keys decode steps.
      const bool graph = run == FixtureRun::kDecodeGraphs && gpu.begin_graph(0x5eed0000u + table.size());
      auto logits_or = model.forward(m, std::span<const int32_t>(ids.data() + first, n), rows);
      if (graph) gpu.end_graph();
      if (!logits_or.ok()) {
        std::printf("fixture        forward failed: %s FAIL\n", logits_or.status().to_string().c_str());
        ++g_failures;
        return;
      }
      gpu.argmax_logprob(*logits_or, got.data() + first, lp.data() + first);
    }
    for (int i = 0; i < T; ++i) {
      if (margin[i] > kIssueMargin) {
        ++checked_05;
        wrong_05 += got[i] != want[i];
      }
      if (margin[i] <= kFixtureMargin) continue;
      ++checked;
      if (got[i] != want[i]) {
        ++wrong;
        std::printf("fixture        %s position %d: got %d, golden %d (golden margin %.3f)\n",
                    cs["name"].get<std::string>().c_str(), i, got[i], want[i], margin[i]);
      }
    }
  }
  // A reference without any position over the margin (a degenerate golden) has
  // nothing to compare: reported, not failed.
  const bool ok = wrong == 0;
  if (!ok) ++g_failures;
  std::printf("%-14s %-34s argmax equal at %d/%d positions with margin > %.2f %s\n", label, dir.c_str(),
              checked - wrong, checked, kFixtureMargin, !ok ? "FAIL" : checked > 0 ? "ok" : "(nothing to check)");
  std::printf("%-14s %-34s (info) margin > %.2f: %d of %d positions differ\n", label, dir.c_str(), kIssueMargin,
              wrong_05, checked_05);
}

}  // namespace
}  // namespace kr

int main(int argc, char** argv) {
  std::string fixture = "models/tiny-llama3", golden = "tests/golden/tiny-llama3.expected.json";
  std::string families = "tests/golden/families";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--fixture") fixture = argv[i + 1];
    if (a == "--golden") golden = argv[i + 1];
    if (a == "--families") families = argv[i + 1];
  }
  if (!kr::cuda_device_available()) {
    std::fprintf(stderr, "kr-backend-ops: no CUDA device\n");
    return 2;
  }
  using kr::Activation;
  using kr::NormKind;
  auto cpu = kr::make_cpu_backend(0, size_t{1} << 30);
  auto gpu = kr::make_cuda_backend(kr::CudaOptions{});
  {
    kr::Ctx c(*cpu, *gpu);
    kr::test_embedding(c, 1000, 3072, 7, 1.0f);
    kr::test_embedding(c, 50, 72, 1, 1.0f);
    kr::test_embedding(c, 1000, 2560, 5, 50.5f);  // Gemma: bf16(sqrt(2560))
    kr::test_embedding(c, 50, 80, 1, 8.9375f);    // bf16(sqrt(80))
    for (NormKind kind : {NormKind::kTimesWeight, NormKind::kTimesOnePlusWeight}) {
      for (bool add : {false, true}) {
        kr::test_norm(c, 1, 3072, add, kind);
        kr::test_norm(c, 33, 3072, add, kind);
        kr::test_norm(c, 5, 136, add, kind);
        kr::test_norm(c, 2, 64, add, kind);
      }
    }
    // GEMV path (T ≤ 4) and cuBLAS path, 3B shapes and odd ones.
    kr::test_matmul(c, 1, 3072, 5120, false);
    kr::test_matmul(c, 2, 3072, 3072, false);
    kr::test_matmul(c, 3, 8192, 3072, false);
    kr::test_matmul(c, 4, 3072, 16384, false);
    kr::test_matmul(c, 1, 3072, 128256, true);
    kr::test_matmul(c, 1, 24, 40, false);
    kr::test_matmul(c, 7, 3072, 5120, false);
    kr::test_matmul(c, 64, 3072, 8192, false);
    kr::test_matmul(c, 37, 136, 72, false);
    kr::test_matmul(c, 5, 64, 1000, true);
    for (Activation f : {Activation::kSilu, Activation::kGeluTanh}) {
      kr::test_silu_gather(c, 3, 8192, f);
      kr::test_silu_gather(c, 5, 24, f);
    }
    kr::test_softcap(c, 3, 128256, 30.0f);
    kr::test_softcap(c, 1, 1000, 3.0f);
    // Attention: prefill, decode batches (split keys), chunked prefill, mixed; GQA groups 3, 2, 1.
    kr::test_attention(c, "prefill 100", {0}, {100}, 24, 8, 128);
    kr::test_attention(c, "decode x5", {1, 15, 16, 300, 1500}, {1, 1, 1, 1, 1}, 24, 8, 128);
    kr::test_attention(c, "decode x1 4000", {4000}, {1}, 24, 8, 128);
    kr::test_attention(c, "chunk 300+50", {300}, {50}, 24, 8, 128);
    kr::test_attention(c, "mixed", {0, 40, 7}, {23, 1, 70}, 24, 8, 128);
    kr::test_attention(c, "prefill 37", {0}, {37}, 4, 2, 16);
    kr::test_attention(c, "decode x3", {5, 60, 200}, {1, 1, 1}, 4, 2, 16);
    kr::test_attention(c, "mixed g1", {3, 0}, {1, 45}, 8, 8, 64);
    // The families' attention: sliding windows (prefill longer than the window,
    // decode with keys split past it, chunked prefill across its edge), soft-caps,
    // q/k/v biases and q/k norms in rope(); Gemma 3's head_dim 256.
    for (const kr::Flavor* f : kr::kFlavors) {
      if (f == &kr::kLlama) continue;
      kr::test_attention(c, "prefill 300", {0}, {300}, 32, 8, 128, *f);
      kr::test_attention(c, "decode x4", {10, 63, 64, 2000}, {1, 1, 1, 1}, 32, 8, 128, *f);
      kr::test_attention(c, "chunk 90+50", {90}, {50}, 32, 8, 128, *f);
      kr::test_attention(c, "mixed", {0, 150, 7}, {120, 1, 70}, 8, 4, 256, *f);
    }
    kr::test_attention(c, "decode x1 5000", {5000}, {1}, 8, 4, 256, kr::kGemma3);
    // Fused ops at batch 1 (the fused GEMVs), 2-4 (GEMV + kernel) and more (cuBLAS
    // + kernel), with and without the norm prologue; 3B shapes and odd ones.
    for (bool norm : {false, true}) {
      kr::test_qkv_rope_store(c, {127}, {1}, 3072, 24, 8, 128, norm);
      kr::test_qkv_rope_store(c, {5, 0, 90}, {1, 1, 1}, 3072, 24, 8, 128, norm);
      kr::test_qkv_rope_store(c, {0}, {40}, 3072, 24, 8, 128, norm);
      kr::test_qkv_rope_store(c, {20}, {1}, 136, 6, 3, 32, norm);
      kr::test_qkv_rope_store(c, {3, 9}, {1, 6}, 64, 4, 2, 16, norm);
      kr::test_matmul_silu_mul(c, 1, 3072, 8192, norm);
      kr::test_matmul_silu_mul(c, 2, 3072, 8192, norm);
      kr::test_matmul_silu_mul(c, 64, 3072, 8192, norm);
      kr::test_matmul_silu_mul(c, 1, 40, 24, norm);
      kr::test_matmul_silu_mul(c, 1, 8192, 24, norm);  // with the norm: too long a row for the prologue
      kr::test_matmul_silu_mul(c, 9, 136, 48, norm);
      // The families' forms: Qwen2's bias in the kRope epilogue, Qwen3's and Gemma 3's
      // q/k norms in the kRopeQkNorm epilogue (head_dim 128 and 256), Gemma's (1 + w)
      // norm prologue and GELU epilogue.
      for (const kr::Flavor* f : kr::kFlavors) {
        if (f == &kr::kLlama) continue;
        kr::test_qkv_rope_store(c, {127}, {1}, 4096, 32, 8, 128, norm, *f);
        kr::test_qkv_rope_store(c, {5, 0, 90}, {1, 1, 1}, 3584, 28, 4, 128, norm, *f);
        kr::test_qkv_rope_store(c, {0}, {40}, 4096, 32, 8, 128, norm, *f);
        kr::test_qkv_rope_store(c, {300}, {1}, 2560, 8, 4, 256, norm, *f);
        kr::test_qkv_rope_store(c, {3, 9}, {1, 6}, 64, 4, 2, 16, norm, *f);
        kr::test_matmul_silu_mul(c, 1, 2560, 10240, norm, *f);
        kr::test_matmul_silu_mul(c, 64, 2560, 10240, norm, *f);
      }
    }
    kr::test_matmul_add_rms_norm(c, 1, 3072, 3072);
    kr::test_matmul_add_rms_norm(c, 1, 8192, 3072);
    kr::test_matmul_add_rms_norm(c, 3, 8192, 3072);
    kr::test_matmul_add_rms_norm(c, 64, 3072, 3072);
    kr::test_matmul_add_rms_norm(c, 5, 48, 136);
    for (const kr::Flavor* f : {&kr::kGemma2, &kr::kGemma3}) {
      kr::test_matmul_add_rms_norm(c, 1, 2048, 2560, *f);
      kr::test_matmul_add_rms_norm(c, 1, 10240, 2560, *f);
      kr::test_matmul_add_rms_norm(c, 64, 10240, 2560, *f);
      kr::test_matmul_add_rms_norm(c, 5, 48, 136, *f);
    }
    // Two decoder layers as the forward issues them: batch 1 at contexts 128 and
    // 4001, batch 3 and 64, and small shapes; then every family's form.
    kr::test_layers(c, {127}, 3072, 24, 8, 128, 8192);
    kr::test_layers(c, {4000}, 3072, 24, 8, 128, 8192);
    kr::test_layers(c, {3, 200, 41}, 3072, 24, 8, 128, 8192);
    std::vector<int> batch64;
    for (int s = 0; s < 64; ++s) batch64.push_back(150 + 3 * s);
    kr::test_layers(c, batch64, 3072, 24, 8, 128, 8192);
    kr::test_layers(c, {20}, 64, 4, 2, 16, 192);
    kr::test_layers(c, {0, 7}, 136, 6, 3, 32, 48);
    for (const kr::Flavor* f : kr::kFlavors) {
      if (f == &kr::kLlama) continue;
      kr::test_layers(c, {127}, 4096, 32, 8, 128, 4096, *f);
      kr::test_layers(c, {3, 200, 41}, 2560, 8, 4, 256, 2048, *f);
      kr::test_layers(c, batch64, 2048, 16, 8, 128, 2048, *f);
    }
  }
  {
    // Without programmatic dependent launch (CudaOptions::pdl off).
    kr::CudaOptions no_pdl;
    no_pdl.pdl = false;
    auto gpu_no_pdl = kr::make_cuda_backend(no_pdl);
    std::printf("(pdl off)\n");
    kr::Ctx c(*cpu, *gpu_no_pdl);
    kr::test_layers(c, {127}, 3072, 24, 8, 128, 8192);
    kr::test_layers(c, {0, 7}, 136, 6, 3, 32, 48);
    kr::test_layers(c, {127}, 4096, 32, 8, 128, 4096, kr::kQwen3);
  }
  {
    kr::Ctx c(*cpu, *gpu);
    kr::test_argmax(c, 3, 128256);
    kr::test_argmax(c, 1, 1000);
    kr::test_graph(c);
  }
  for (kr::FixtureRun run : {kr::FixtureRun::kPrefill, kr::FixtureRun::kDecode, kr::FixtureRun::kDecodeGraphs})
    kr::test_fixture(*gpu, fixture, golden, run);
  // Every family's tiny model (tests/golden/families), the vision-language folder in both forms.
  for (const char* name : {"qwen2", "qwen3", "mistral", "gemma2", "gemma3", "gemma3_vlm", "gemma3_vlm/v4"}) {
    const std::string dir = families + "/" + name;
    const std::string ref = std::string(name) == "gemma3_vlm/v4" ? families + "/gemma3_vlm/expected.json"
                                                                 : dir + "/expected.json";
    for (kr::FixtureRun run : {kr::FixtureRun::kPrefill, kr::FixtureRun::kDecode, kr::FixtureRun::kDecodeGraphs})
      kr::test_fixture(*gpu, dir, ref, run);
  }
  std::printf("%s: %d failure(s)\n", kr::g_failures ? "FAIL" : "PASS", kr::g_failures);
  return kr::g_failures ? 1 : 0;
}
