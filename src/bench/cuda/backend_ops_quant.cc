// GCC 12 reports a false -Wrestrict inside std::string's operator+ when it inlines
// "literal" + std::to_string(...) chains (GCC bug 105329); CI builds with -Werror.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include "bench/cuda/backend_ops_quant.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_decode_stack.h"
#include "backend/dtype_convert.h"
#include "bench/cuda/backend_ops_error.h"
#include "backend/float_codec.h"
#include "backend/kv_cache_dtype.h"
#include "model/hf_config.h"
#include "model/model.h"
#include "model/model_weights.h"

namespace kr::quant_ops {
namespace {

std::mt19937_64 g_rng(4242);
int g_failures = 0;
int g_w8a8_min_tokens = 9;  // CudaOptions::fp8_w8a8_min_tokens of the GPU under test (= the CPU's)
// CudaOptions::quant_dense_min_tokens and quant8_dense_min_tokens of the GPU under test (labels only).
const int kDefaultDenseMin = CudaOptions{}.quant_dense_min_tokens;
const int kDefaultDense8Min = CudaOptions{}.quant8_dense_min_tokens;
int g_dense_min_tokens = kDefaultDenseMin;
int g_dense8_min_tokens = kDefaultDense8Min;
std::string g_tag;          // appended to every reported shape (the kernel under test in run_gemv_kernels)

std::vector<float> rand_bf16(size_t n, float scale) {
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = bf16_to_f32(f32_to_bf16(d(g_rng)));
  return v;
}

// One op's result against the reference (op_error); a NaN fails.
void report(const std::string& op, const std::string& shape, const std::vector<float>& ref,
            const std::vector<float>& got, double tol) {
  const OpError e = op_error(ref, got);
  const bool ok = e.rel <= tol;
  if (!ok) ++g_failures;
  std::printf("%-18s %-50s max_abs %-10.3g rel %-10.3g tol %-7.3g %s\n", op.c_str(), (shape + g_tag).c_str(), e.max_abs,
              e.rel, tol, ok ? "ok" : "FAIL");
  std::fflush(stdout);
}

// Tensors on both backends (CPU f32, GPU bf16 activations), freed at the end.
struct Env {
  Backend& cpu;
  Backend& gpu;
  std::vector<Tensor> cpu_allocs, gpu_allocs;
  Env(Backend& c, Backend& g) : cpu(c), gpu(g) {}
  ~Env() {
    for (Tensor& t : cpu_allocs) cpu.free(t);
    for (Tensor& t : gpu_allocs) gpu.free(t);
  }
  struct Dual {
    Tensor cpu, gpu;
  };
  Dual act(std::initializer_list<int64_t> dims, const std::vector<float>& values, DType gpu_dtype = DType::kBF16) {
    Dual d{cpu.alloc(DType::kF32, dims), gpu.alloc(gpu_dtype, dims)};
    cpu_allocs.push_back(d.cpu);
    gpu_allocs.push_back(d.gpu);
    if (!values.empty()) {
      cpu.copy_from_host(d.cpu, values.data(), values.size() * 4);
      if (gpu_dtype == DType::kBF16) {
        std::vector<uint16_t> b(values.size());
        for (size_t i = 0; i < values.size(); ++i) b[i] = f32_to_bf16(values[i]);
        gpu.copy_from_host(d.gpu, b.data(), b.size() * 2);
      } else {
        gpu.copy_from_host(d.gpu, values.data(), values.size() * 4);
      }
    } else {
      std::vector<uint8_t> nan(d.gpu.bytes(), 0xFF);  // poisoned: all-ones is NaN in bf16 and f32
      gpu.copy_from_host(d.gpu, nan.data(), nan.size());
    }
    return d;
  }
  Dual ints(std::initializer_list<int64_t> dims, const std::vector<int32_t>& values) {
    Dual d{cpu.alloc(DType::kI32, dims), gpu.alloc(DType::kI32, dims)};
    cpu_allocs.push_back(d.cpu);
    gpu_allocs.push_back(d.gpu);
    cpu.copy_from_host(d.cpu, values.data(), values.size() * 4);
    gpu.copy_from_host(d.gpu, values.data(), values.size() * 4);
    return d;
  }
  // bf16 host weights (norms, RoPE tables live in act()).
  std::vector<std::unique_ptr<std::vector<uint16_t>>> host;
  Dual weight(std::initializer_list<int64_t> dims, const std::vector<float>& values) {
    host.push_back(std::make_unique<std::vector<uint16_t>>(values.size()));
    for (size_t i = 0; i < values.size(); ++i) (*host.back())[i] = f32_to_bf16(values[i]);
    Tensor h(host.back()->data(), DType::kBF16, dims);
    Dual d{cpu.upload_weight(h), gpu.upload_weight(h)};
    gpu_allocs.push_back(d.gpu);
    return d;
  }
  // A KV cache of e4m3(values / scale) bytes on both backends (an FP8 KV cache).
  Dual fp8_cache(std::initializer_list<int64_t> dims, const std::vector<float>& values, float scale) {
    Dual d{cpu.alloc(DType::kF8E4M3, dims), gpu.alloc(DType::kF8E4M3, dims)};
    cpu_allocs.push_back(d.cpu);
    gpu_allocs.push_back(d.gpu);
    std::vector<uint8_t> bytes(values.size());
    for (size_t i = 0; i < values.size(); ++i) bytes[i] = kv_fp8_encode(values[i], scale);
    cpu.copy_from_host(d.cpu, bytes.data(), bytes.size());
    gpu.copy_from_host(d.gpu, bytes.data(), bytes.size());
    return d;
  }
  std::vector<float> read(const Tensor& t, bool from_gpu) {
    std::vector<float> out(static_cast<size_t>(t.numel()));
    if (t.dtype == DType::kF8E4M3) {  // an FP8 cache: its e4m3 values (unscaled)
      std::vector<uint8_t> b(out.size());
      (from_gpu ? gpu : cpu).copy_to_host(b.data(), t, b.size());
      for (size_t i = 0; i < b.size(); ++i) out[i] = fp8_e4m3_to_f32(b[i]);
    } else if (t.dtype == DType::kBF16) {
      std::vector<uint16_t> b(out.size());
      gpu.copy_to_host(b.data(), t, b.size() * 2);
      for (size_t i = 0; i < b.size(); ++i) out[i] = bf16_to_f32(b[i]);
    } else {
      (from_gpu ? gpu : cpu).copy_to_host(out.data(), t, out.size() * 4);
    }
    return out;
  }
};

// ---- random quantized matrices ----

struct Spec {
  const char* name;
  QuantKind kind;
  int bits;
  int64_t group;  // -1: one group per row
  ZeroKind zero;
  bool f16;       // scales (and biases) F16, else BF16
  bool perm;      // act-order
  ScaleLayout fp8_layout;
  ActQuant act;
};

const Spec kSpecs[] = {
    {"awq-int4-g128", QuantKind::kInt, 4, 128, ZeroKind::kInteger, true, false, ScaleLayout::kGroup, ActQuant::kNone},
    {"gptq-int4-g32-sym", QuantKind::kInt, 4, 32, ZeroKind::kSymmetric, true, false, ScaleLayout::kGroup, ActQuant::kNone},
    {"ct-int4-channel", QuantKind::kInt, 4, -1, ZeroKind::kSymmetric, false, false, ScaleLayout::kGroup, ActQuant::kNone},
    {"mlx-int4-g64", QuantKind::kInt, 4, 64, ZeroKind::kFloatBias, false, false, ScaleLayout::kGroup, ActQuant::kNone},
    {"gptq-int4-g128-actorder", QuantKind::kInt, 4, 128, ZeroKind::kInteger, true, true, ScaleLayout::kGroup, ActQuant::kNone},
    {"gptq-int8-g128", QuantKind::kInt, 8, 128, ZeroKind::kInteger, true, false, ScaleLayout::kGroup, ActQuant::kNone},
    {"mlx-int8-g32", QuantKind::kInt, 8, 32, ZeroKind::kFloatBias, false, false, ScaleLayout::kGroup, ActQuant::kNone},
    {"ct-int8-channel-sym", QuantKind::kInt, 8, -1, ZeroKind::kSymmetric, false, false, ScaleLayout::kGroup, ActQuant::kNone},
    {"fp8-tensor-static", QuantKind::kFp8, 8, -1, ZeroKind::kSymmetric, false, false, ScaleLayout::kTensor, ActQuant::kStaticTensor},
    {"fp8-channel-dynamic", QuantKind::kFp8, 8, -1, ZeroKind::kSymmetric, false, false, ScaleLayout::kGroup, ActQuant::kDynamicToken},
    {"fp8-block128", QuantKind::kFp8, 8, -1, ZeroKind::kSymmetric, false, false, ScaleLayout::kBlock, ActQuant::kDynamicGroup},
    {"fp8-channel-w8a16", QuantKind::kFp8, 8, -1, ZeroKind::kSymmetric, false, false, ScaleLayout::kGroup, ActQuant::kNone},
};

const Spec& spec(const std::string& name) {
  for (const Spec& s : kSpecs)
    if (name == s.name) return s;
  std::fprintf(stderr, "unknown spec %s\n", name.c_str());
  std::abort();
}

bool spec_fits(const Spec& s, int64_t K) {
  if (s.kind == QuantKind::kFp8) return s.fp8_layout != ScaleLayout::kBlock || K % 128 == 0;
  return s.group < 0 || K % s.group == 0;
}

float exact16(float v, bool f16) { return f16 ? f16_to_f32(f32_to_f16(v)) : bf16_to_f32(f32_to_bf16(v)); }

// Weights of magnitude about 0.05, like the dense checks.
QuantizedMatrix make_matrix(const Spec& s, int64_t N, int64_t K) {
  QuantizedMatrix m;
  m.kind = s.kind;
  m.format = s.name;
  m.name = std::string(s.name) + " [" + std::to_string(N) + ", " + std::to_string(K) + "]";
  m.N = N;
  m.K = K;
  m.bits = s.bits;
  std::uniform_real_distribution<float> u(0.5f, 1.5f);
  if (s.kind == QuantKind::kFp8) {
    std::normal_distribution<float> nd(0.0f, 8.0f);
    for (int64_t i = 0; i < N * K; ++i) m.fp8.push_back(f32_to_fp8_e4m3(nd(g_rng)));
    m.group_size = K;
    m.scale_layout = s.fp8_layout;
    m.act = s.act;
    const float base = 0.05f / 24.0f;
    if (s.fp8_layout == ScaleLayout::kBlock) {
      m.block_n = 128;
      m.block_k = 128;
      m.act_group_size = 128;
    }
    for (int64_t i = 0; i < m.scale_rows() * m.scale_cols(); ++i) m.scales.push_back(exact16(base * u(g_rng), false));
    m.scale_dtype = DType::kBF16;
    if (s.act == ActQuant::kStaticTensor) m.input_scale = 2.5f / 448.0f;  // covers |x| <= 2.5
  } else {
    m.group_size = s.group < 0 ? K : s.group;
    m.zero_kind = s.zero;
    m.scale_dtype = s.f16 ? DType::kF16 : DType::kBF16;
    std::uniform_int_distribution<uint32_t> code(0, (1u << s.bits) - 1);
    const int pf = m.pack_factor();
    m.qweight.assign(static_cast<size_t>(N * m.words_per_row()), 0u);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < K; ++j) m.qweight[static_cast<size_t>(n * m.words_per_row() + j / pf)] |= code(g_rng) << (s.bits * (j % pf));
    const float mid = static_cast<float>(1 << (s.bits - 1));
    for (int64_t i = 0; i < N * m.groups(); ++i) {
      const float sc = exact16(0.05f / mid * u(g_rng) * (s.zero == ZeroKind::kFloatBias && i % 5 == 0 ? -1.0f : 1.0f), s.f16);
      m.scales.push_back(sc);
      if (s.zero == ZeroKind::kInteger) m.zeros.push_back(static_cast<uint8_t>(code(g_rng)));
      if (s.zero == ZeroKind::kFloatBias) m.biases.push_back(exact16(-sc * mid * u(g_rng), s.f16));
    }
    if (s.perm) {
      for (int64_t j = 0; j < K; ++j) m.perm.push_back(static_cast<int32_t>(j));
      std::shuffle(m.perm.begin(), m.perm.end(), g_rng);
    }
  }
  const Status st = m.validate();
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.to_string().c_str());
    std::abort();
  }
  return m;
}

struct QPair {
  LinearWeight cpu, gpu;
  std::string desc;
};

QPair upload(Env& e, const QuantizedMatrix& m) {
  auto c = e.cpu.upload_quantized(m);
  auto g = e.gpu.upload_quantized(m);
  if (!c.ok() || !g.ok()) {
    std::fprintf(stderr, "upload_quantized(%s): %s / %s\n", m.name.c_str(), c.status().to_string().c_str(),
                 g.status().to_string().c_str());
    std::abort();
  }
  return QPair{*c, *g, g->quant_desc};
}

// Which path of the CUDA backend T rows take (its fp8_w8a8_min_tokens, other options default).
std::string path_of(const Spec& s, int64_t N, int64_t K, int64_t T) {
  QuantizedMatrix m;
  m.kind = s.kind;
  m.N = N;
  m.K = K;
  m.scale_layout = s.fp8_layout;
  m.act = s.act;
  if (fp8_runs_w8a8(m) && T >= g_w8a8_min_tokens) return "w8a8";
  if (T >= (s.kind == QuantKind::kInt && s.bits == 8 ? g_dense8_min_tokens : g_dense_min_tokens)) return "dense";
  return T <= 8 ? "gemv" : "mma";
}

// Every path against the CPU reference of that path: on the FP8 W8A8 path the CPU
// quantizes the activations as the GPU does (CpuOptions::emulate_fp8_w8a8; the line
// says "vs cpu w8a8"), so it is held to the same tolerance as the others (against
// the W8A16 reference it needed 0.08).
constexpr double kQuantTol = 0.02;
std::string ref_of(const std::string& path) { return path == "w8a8" ? "cpu w8a8" : "cpu"; }
// A fused op with an RMSNorm prologue on the W8A8 path: the normed activations the
// two backends quantize differ by bf16 ulps (f32 norm on the CPU), and an ulp that
// crosses an e4m3 rounding boundary moves that element by a whole e4m3 step (2^-4
// relative; a per-token dynamic scale moves with the row's max). 0.022-0.029 on
// the H200 (bench/results/h200-2026-12-02-kernels).
constexpr double kW8a8NormedTol = 0.05;
double tol_of(const std::string& path, bool norm) { return path == "w8a8" && norm ? kW8a8NormedTol : kQuantTol; }

void test_matmul(Env& e, const Spec& s, int64_t N, int64_t K, const std::vector<int>& Ts, bool f32_out = false) {
  const QuantizedMatrix m = make_matrix(s, N, K);
  const QPair w = upload(e, m);
  for (int T : Ts) {
    auto x = e.act({T, K}, rand_bf16(static_cast<size_t>(T) * K, 1.0f));
    auto out = e.act({T, N}, {}, f32_out ? DType::kF32 : DType::kBF16);
    e.cpu.matmul(x.cpu, w.cpu, out.cpu);
    e.gpu.matmul(x.gpu, w.gpu, out.gpu);
    const std::string path = path_of(s, N, K, T);
    report(std::string("qmatmul ") + path + (f32_out ? "->f32" : ""),
           std::string(s.name) + " T" + std::to_string(T) + " N" + std::to_string(N) + " K" + std::to_string(K) +
               (path == "w8a8" ? " vs cpu w8a8" : ""),
           e.read(out.cpu, false), e.read(out.gpu, true), kQuantTol);
  }
}

void test_embedding(Env& e, const Spec& s, int64_t V, int64_t H, int T, float scale) {
  const QuantizedMatrix m = make_matrix(s, V, H);
  const QPair w = upload(e, m);
  std::vector<int32_t> ids(static_cast<size_t>(T));
  for (int32_t& i : ids) i = static_cast<int32_t>(g_rng() % V);
  auto idt = e.ints({T}, ids);
  auto out = e.act({T, H}, {});
  e.cpu.embedding(w.cpu, idt.cpu, scale, out.cpu);
  e.gpu.embedding(w.gpu, idt.gpu, scale, out.gpu);
  // The GPU rounds each dequantized element to bf16 (and again after a scale).
  report("qembedding", std::string(s.name) + " V" + std::to_string(V) + " H" + std::to_string(H) + " T" +
                           std::to_string(T) + (scale != 1.0f ? " scale" : ""),
         e.read(out.cpu, false), e.read(out.gpu, true), scale != 1.0f ? 0.01 : 0.005);
}

// One sequence per entry, `cached` old tokens and `fresh` new ones; blocks contiguous.
StepMetadata make_meta(const std::vector<int>& cached, const std::vector<int>& fresh, int bs) {
  StepMetadata m;
  m.num_seqs = static_cast<int>(cached.size());
  m.block_size = bs;
  int maxb = 0;
  for (size_t i = 0; i < cached.size(); ++i) maxb = std::max(maxb, (cached[i] + fresh[i] + bs - 1) / bs);
  m.max_blocks_per_seq = maxb;
  m.query_start.push_back(0);
  for (size_t i = 0; i < cached.size(); ++i) {
    const int ctx = cached[i] + fresh[i];
    for (int b = 0; b < maxb; ++b) m.block_tables.push_back(b < (ctx + bs - 1) / bs ? static_cast<int>(i) * maxb + b : -1);
    for (int p = cached[i]; p < ctx; ++p) {
      m.positions.push_back(p);
      m.slot_mapping.push_back((static_cast<int>(i) * maxb + p / bs) * bs + p % bs);
    }
    m.query_start.push_back(m.query_start.back() + fresh[i]);
    m.context_lens.push_back(ctx);
    m.max_context_len = std::max(m.max_context_len, ctx);
  }
  m.num_tokens = m.query_start.back();
  return m;
}

// The three ways of a fused op: CPU, CUDA override, CUDA composed default.
enum class Way { kCpu, kCuda, kComposed };

// `ref`: which CPU reference ("cpu", or "cpu w8a8" on the FP8 W8A8 path).
void compare3(Env& e, const std::string& op, const std::string& shape, const Tensor& cpu, const Tensor& cuda,
              const Tensor& composed, double tol, const std::string& ref) {
  const std::vector<float> fused = e.read(cuda, true);
  report(op, shape + " vs " + ref, e.read(cpu, false), fused, tol);
  // The override keeps the unfused roundings: only summation order differs.
  report("  " + op, shape + " vs composed", e.read(composed, true), fused, 0.01);
}

// The options of the model families a fused op takes (QkvParams, RmsNorm, Activation).
struct Fam {
  NormKind norm = NormKind::kTimesWeight;  // of the prologue (and the q/k norms)
  bool bias = false;                       // q/k/v biases (Qwen2)
  bool qk_norm = false;                    // per-head q/k norms (Qwen3, Gemma 3)
  Activation act = Activation::kSilu;      // GeGLU (Gemma)
  std::string str() const {
    std::string r;
    if (norm == NormKind::kTimesOnePlusWeight) r += " (1+w)";
    if (bias) r += " bias";
    if (qk_norm) r += " qk-norm";
    if (act == Activation::kGeluTanh) r += " gelu";
    return r;
  }
};

// kv_fp8: FP8 KV caches (scales k 0.75, v 1.25), compared as their e4m3 values.
void test_qkv_rope_store(Env& e, const Spec& s, const std::vector<int>& cached, const std::vector<int>& fresh, int H,
                         int Hq, int Hkv, int D, bool norm, const Fam& f = {}, bool kv_fp8 = false) {
  const int bs = 16;
  const StepMetadata m = make_meta(cached, fresh, bs);
  const int T = m.num_tokens, W = (Hq + 2 * Hkv) * D;
  const int blocks = m.num_seqs * m.max_blocks_per_seq;
  const size_t cache = static_cast<size_t>(blocks) * bs * Hkv * D;
  const QPair w = upload(e, make_matrix(s, W, H));
  const std::vector<float> xv = rand_bf16(static_cast<size_t>(T) * H, 2.0f);
  const std::vector<float> k0 = rand_bf16(cache, 1.0f), v0 = rand_bf16(cache, 1.0f);
  auto nw = e.weight({H}, rand_bf16(H, 1.5f));
  auto bias = e.weight({W}, rand_bf16(W, 1.0f));
  auto qn = e.weight({D}, rand_bf16(D, 1.5f)), kn = e.weight({D}, rand_bf16(D, 1.5f));
  std::vector<float> inv;
  for (int i = 0; i < D / 2; ++i) inv.push_back(static_cast<float>(std::pow(500000.0, -2.0 * i / D)));
  auto inv_t = e.act({D / 2}, inv, DType::kF32);
  Tensor qkv[3], normed[3], kc[3], vc[3];
  for (Way way : {Way::kCpu, Way::kCuda, Way::kComposed}) {
    const int i = static_cast<int>(way);
    const bool cpu = way == Way::kCpu;
    Backend& b = cpu ? e.cpu : e.gpu;
    auto x = e.act({T, H}, xv);
    auto q = e.act({T, W}, {}), n = e.act({T, H}, {});
    const float k_scale = kv_fp8 ? 0.75f : 1.0f, v_scale = kv_fp8 ? 1.25f : 1.0f;
    auto k = kv_fp8 ? e.fp8_cache({blocks, bs, Hkv, D}, k0, k_scale) : e.act({blocks, bs, Hkv, D}, k0);
    auto v = kv_fp8 ? e.fp8_cache({blocks, bs, Hkv, D}, v0, v_scale) : e.act({blocks, bs, Hkv, D}, v0);
    qkv[i] = cpu ? q.cpu : q.gpu;
    normed[i] = cpu ? n.cpu : n.gpu;
    kc[i] = cpu ? k.cpu : k.gpu;
    vc[i] = cpu ? v.cpu : v.gpu;
    RopeParams rope;
    rope.head_dim = D;
    rope.inv_freq = cpu ? inv_t.cpu : inv_t.gpu;
    KvLayer kv{kc[i], vc[i], k_scale, v_scale};
    const Tensor& xt = cpu ? x.cpu : x.gpu;
    const MatmulInput in = norm ? MatmulInput::rms_normed(xt, RmsNorm{cpu ? &nw.cpu : &nw.gpu, 1e-5f, f.norm}, normed[i])
                                : MatmulInput(xt);
    QkvParams p{Hq, Hkv, &rope};
    if (f.bias) p.bias = cpu ? &bias.cpu : &bias.gpu;
    if (f.qk_norm) {
      p.q_norm = RmsNorm{cpu ? &qn.cpu : &qn.gpu, 1e-6f, f.norm};
      p.k_norm = RmsNorm{cpu ? &kn.cpu : &kn.gpu, 1e-6f, f.norm};
    }
    b.set_step_metadata(m);
    if (way == Way::kComposed) {
      b.Backend::qkv_rope_store(in, w.gpu, qkv[i], p, kv);
    } else {
      b.qkv_rope_store(in, cpu ? w.cpu : w.gpu, qkv[i], p, kv);
    }
  }
  const std::string shape = std::string(s.name) + " T" + std::to_string(T) + (norm ? " norm" : "") + " H" +
                            std::to_string(H) + " Hq" + std::to_string(Hq) + "/" + std::to_string(Hkv) + " D" +
                            std::to_string(D) + f.str() + (kv_fp8 ? " fp8kv" : "");
  // The reference of the path the fused op's matmul takes (T rows of the step).
  const std::string path = path_of(s, W, H, T);
  const std::string ref = ref_of(path);
  const double tol = tol_of(path, norm);
  compare3(e, "qkv_rope_store", shape, qkv[0], qkv[1], qkv[2], tol, ref);
  // FP8 caches against the CPU: where a bf16 ulp of the projection crosses an e4m3
  // rounding boundary the element moves by one e4m3 step, up to 2^-3 of the largest
  // value (against the composed way, which rounds the same bf16 values, exact).
  const double cache_tol = kv_fp8 ? 0.13 : tol;
  compare3(e, "  k cache", shape, kc[0], kc[1], kc[2], cache_tol, ref);
  compare3(e, "  v cache", shape, vc[0], vc[1], vc[2], cache_tol, ref);
  if (norm) compare3(e, "  normed", shape, normed[0], normed[1], normed[2], 0.02, ref);
}

void test_matmul_silu_mul(Env& e, const Spec& s, int T, int K, int I, bool norm, const Fam& f = {}) {
  const QPair w = upload(e, make_matrix(s, 2 * int64_t{I}, K));
  const std::vector<float> xv = rand_bf16(static_cast<size_t>(T) * K, 2.0f);
  auto nw = e.weight({K}, rand_bf16(K, 1.5f));
  Tensor gu[3], act[3], normed[3];
  for (Way way : {Way::kCpu, Way::kCuda, Way::kComposed}) {
    const int i = static_cast<int>(way);
    const bool cpu = way == Way::kCpu;
    Backend& b = cpu ? e.cpu : e.gpu;
    auto x = e.act({T, K}, xv);
    auto g = e.act({T, 2 * I}, {}), a = e.act({T, I}, {}), n = e.act({T, K}, {});
    gu[i] = cpu ? g.cpu : g.gpu;
    act[i] = cpu ? a.cpu : a.gpu;
    normed[i] = cpu ? n.cpu : n.gpu;
    const Tensor& xt = cpu ? x.cpu : x.gpu;
    const MatmulInput in = norm ? MatmulInput::rms_normed(xt, RmsNorm{cpu ? &nw.cpu : &nw.gpu, 1e-5f, f.norm}, normed[i])
                                : MatmulInput(xt);
    if (way == Way::kComposed) {
      b.Backend::matmul_silu_mul(in, w.gpu, f.act, gu[i], act[i]);
    } else {
      b.matmul_silu_mul(in, cpu ? w.cpu : w.gpu, f.act, gu[i], act[i]);
    }
  }
  const std::string shape = std::string(s.name) + " T" + std::to_string(T) + (norm ? " norm" : "") + " K" +
                            std::to_string(K) + " I" + std::to_string(I) + f.str();
  const std::string path = path_of(s, 2 * int64_t{I}, K, T);
  const std::string ref = ref_of(path);
  const double tol = tol_of(path, norm);
  compare3(e, "matmul_silu_mul", shape, gu[0], gu[1], gu[2], tol, ref);
  compare3(e, "  act", shape, act[0], act[1], act[2], std::max(tol, 0.03), ref);
  if (norm) compare3(e, "  normed", shape, normed[0], normed[1], normed[2], 0.02, ref);
}

// Backend::decode_stack (every decoder layer of a one-token step) on three ways:
// `layers` random layers, a sequence of `cached` tokens in a KV cache of random
// values, `steps` steps in a row (the fused kernel must leave its scratch sums zero
// for the next launch, and each step attends to the keys the ones before stored).
// fused: whether the GPU must run it as one op (fuses_decode_stack), else it must
// not. The CPU reference composes the ops.
void test_decode_stack(Env& e, const Spec& s, int layers, int H, int Hq, int Hkv, int I, int cached, bool fused,
                       const Fam& f = {}, int steps = 2, int bs = 16) {
  constexpr int D = 128;
  const int QKV = (Hq + 2 * Hkv) * D;
  const int width = (cached + steps + bs - 1) / bs;  // the block table's width: blocks 0 .. width - 1, reversed
  const size_t cache = static_cast<size_t>(width) * bs * Hkv * D;
  std::vector<QPair> w;
  for (int l = 0; l < layers; ++l) {
    w.push_back(upload(e, make_matrix(s, QKV, H)));
    w.push_back(upload(e, make_matrix(s, H, int64_t{Hq} * D)));
    w.push_back(upload(e, make_matrix(s, 2 * int64_t{I}, H)));
    w.push_back(upload(e, make_matrix(s, H, I)));
  }
  std::vector<Env::Dual> norms;
  for (int l = 0; l < 2 * layers + 1; ++l) norms.push_back(e.weight({H}, rand_bf16(H, 1.5f)));
  std::vector<float> inv;
  for (int i = 0; i < D / 2; ++i) inv.push_back(static_cast<float>(std::pow(500000.0, -2.0 * i / D)));
  auto inv_t = e.act({D / 2}, inv, DType::kF32);
  std::vector<std::vector<float>> k0, v0;
  for (int l = 0; l < layers; ++l) {
    k0.push_back(rand_bf16(cache, 1.0f));
    v0.push_back(rand_bf16(cache, 1.0f));
  }
  const std::vector<float> emb = rand_bf16(H, 1.0f);
  Tensor residual[3], normed[3], kc[3], vc[3];  // kc, vc: layer 0's caches
  bool ran_fused = false;
  for (Way way : {Way::kCpu, Way::kCuda, Way::kComposed}) {
    const int i = static_cast<int>(way);
    const bool cpu = way == Way::kCpu;
    Backend& b = cpu ? e.cpu : e.gpu;
    auto res = e.act({1, H}, emb), n = e.act({1, H}, {});
    auto q = e.act({1, QKV}, {}), at = e.act({1, int64_t{Hq} * D}, {}), proj = e.act({1, H}, {});
    auto g = e.act({1, 2 * int64_t{I}}, {}), act = e.act({1, I}, {});
    residual[i] = cpu ? res.cpu : res.gpu;
    normed[i] = cpu ? n.cpu : n.gpu;
    Tensor q_t = cpu ? q.cpu : q.gpu, at_t = cpu ? at.cpu : at.gpu, proj_t = cpu ? proj.cpu : proj.gpu;
    Tensor g_t = cpu ? g.cpu : g.gpu, act_t = cpu ? act.cpu : act.gpu;
    RopeParams rope;
    rope.head_dim = D;
    rope.inv_freq = cpu ? inv_t.cpu : inv_t.gpu;
    std::vector<KvLayer> kv(static_cast<size_t>(layers));
    std::vector<QkvParams> qp(static_cast<size_t>(layers), QkvParams{Hq, Hkv, &rope});
    std::vector<AttentionParams> ap(static_cast<size_t>(layers));
    std::vector<Backend::DecodeLayer> dl(static_cast<size_t>(layers));
    for (int l = 0; l < layers; ++l) {
      auto k = e.act({width, bs, Hkv, D}, k0[l]), v = e.act({width, bs, Hkv, D}, v0[l]);
      kv[l] = KvLayer{cpu ? k.cpu : k.gpu, cpu ? v.cpu : v.gpu};
      if (l == 0) {
        kc[i] = kv[0].k;
        vc[i] = kv[0].v;
      }
      ap[l].q_heads = Hq;
      ap[l].kv_heads = Hkv;
      ap[l].head_dim = D;
      ap[l].scale = 1.0f / std::sqrt(static_cast<float>(D));
      Backend::DecodeLayer& d = dl[l];
      auto pick = [&](const QPair& p) { return cpu ? &p.cpu : &p.gpu; };
      d.qkv = pick(w[4 * l]);
      d.o = pick(w[4 * l + 1]);
      d.gate_up = pick(w[4 * l + 2]);
      d.down = pick(w[4 * l + 3]);
      d.input_norm = RmsNorm{cpu ? &norms[2 * l].cpu : &norms[2 * l].gpu, 1e-5f, f.norm};
      d.mlp_norm = RmsNorm{cpu ? &norms[2 * l + 1].cpu : &norms[2 * l + 1].gpu, 1e-5f, f.norm};
      d.qkv_params = &qp[l];
      d.attn_params = &ap[l];
      d.kv = &kv[l];
    }
    Backend::DecodeStack st;
    st.layers = dl;
    st.final_norm = RmsNorm{cpu ? &norms.back().cpu : &norms.back().gpu, 1e-5f, f.norm};
    st.activation = f.act;
    st.residual = &residual[i];
    st.normed = &normed[i];
    st.qkv = &q_t;
    st.attn_out = &at_t;
    st.proj = &proj_t;
    st.gate_up_out = &g_t;
    st.act = &act_t;
    if (way == Way::kCuda) b.prepare_decode_stack(st);
    for (int step = 0; step < steps; ++step) {
      // One token at position cached + step; the sequence's blocks in reverse order.
      StepMetadata m;
      m.num_tokens = m.num_seqs = 1;
      m.block_size = bs;
      m.max_blocks_per_seq = width;
      const int pos = cached + step;
      m.max_context_len = pos + 1;
      m.positions = {pos};
      m.slot_mapping = {(width - 1 - pos / bs) * bs + pos % bs};
      m.query_start = {0, 1};
      m.context_lens = {pos + 1};
      for (int blk = 0; blk < width; ++blk) m.block_tables.push_back(width - 1 - blk);
      b.set_step_metadata(m);
      if (way == Way::kCuda && step == 0) ran_fused = b.fuses_decode_stack(st);
      if (way == Way::kComposed) {
        b.Backend::decode_stack(st);
      } else {
        b.decode_stack(st);
      }
      // The next step's input: this one's final norm as the embedding (the residual stream restarts).
      if (step + 1 < steps) {
        if (cpu) {
          std::vector<float> v(static_cast<size_t>(H));
          b.copy_to_host(v.data(), normed[i], v.size() * 4);
          b.copy_from_host(residual[i], v.data(), v.size() * 4);
        } else {
          std::vector<uint16_t> v(static_cast<size_t>(H));
          b.copy_to_host(v.data(), normed[i], v.size() * 2);
          b.copy_from_host(residual[i], v.data(), v.size() * 2);
        }
      }
    }
  }
  const std::string shape = std::string(s.name) + " L" + std::to_string(layers) + " H" + std::to_string(H) + " Hq" +
                            std::to_string(Hq) + "/" + std::to_string(Hkv) + " I" + std::to_string(I) + " ctx" +
                            std::to_string(cached) + " x" + std::to_string(steps) + f.str() +
                            (ran_fused ? " [fused]" : " [composed]");
  if (ran_fused != fused) {
    ++g_failures;
    std::printf("decode_stack       %-50s FAIL: expected the %s form\n", shape.c_str(), fused ? "fused" : "composed");
  }
  // Random layers amplify rounding differences from layer to layer and step to step:
  // the composed GPU ops end up some way from the CPU, and the fused op, which sums
  // in another order, as far again. So the fused op must be as close to the CPU as
  // the composed ops are (within twice their error, at least kQuantTol), and as
  // close to them.
  auto check = [&](const std::string& what, const Tensor* t) {
    const std::vector<float> ref = e.read(t[0], false), fused_v = e.read(t[1], true), comp = e.read(t[2], true);
    const double composed = op_error(ref, comp).rel;
    const double tol = std::max(kQuantTol, 2.0 * composed);
    char c[32];
    std::snprintf(c, sizeof c, "%.3g", composed);
    report(what, shape + " vs cpu (composed " + c + ")", ref, fused_v, tol);
    report("  " + what, shape + " vs composed", comp, fused_v, tol);
  };
  check("decode_stack", residual);
  check("  normed", normed);
  check("  k cache", kc);
  check("  v cache", vc);
}

// ---- the tiny quantized models ----

// A reference's argmax and top-2 margin at every position of one prompt, and the
// margin from which the GPU must agree (argmax_margin_threshold of its
// last-position logits).
struct Case {
  std::string name;
  std::vector<int32_t> ids;
  std::vector<int32_t> argmax;
  std::vector<double> margin;
  double threshold = kMinArgmaxMargin;
  // FP8 W8A8 references: per position, twice the largest logit change that the
  // activation quantization itself causes there (emulating CPU against plain CPU):
  // a margin below it can flip with another rounding of the same activations.
  std::vector<double> noise_threshold;
  double threshold_at(int p) const {
    return noise_threshold.empty() ? threshold : std::max(threshold, noise_threshold[static_cast<size_t>(p)]);
  }
};

// The cases of one reference, and what to call it in the output.
struct Reference {
  std::string name;
  std::vector<Case> cases;
};

StepMetadata seq_step(int first, int n, int bs, int width) {
  StepMetadata m;
  m.num_tokens = n;
  m.num_seqs = 1;
  m.block_size = bs;
  m.max_blocks_per_seq = width;
  m.max_context_len = first + n;
  for (int i = first; i < first + n; ++i) {
    m.positions.push_back(i);
    m.slot_mapping.push_back(i);
  }
  m.query_start = {0, n};
  m.context_lens = {first + n};
  for (int b = 0; b < width; ++b) m.block_tables.push_back(b);
  return m;
}

// Logits [n, V] of every position of `ids` in one prefill.
std::vector<float> prefill_logits(Model& model, const std::vector<int32_t>& ids) {
  const int n = static_cast<int>(ids.size()), bs = model.block_size();
  std::vector<int32_t> rows(n);
  for (int i = 0; i < n; ++i) rows[i] = i;
  auto l = model.forward(seq_step(0, n, bs, (n + bs - 1) / bs), ids, rows);
  if (!l.ok()) return {};
  std::vector<float> host(static_cast<size_t>(l->numel()));
  model.backend().copy_to_host(host.data(), *l, host.size() * 4);
  return host;
}

ModelOptions model_options() {
  ModelOptions opt;
  opt.max_tokens_per_step = 256;
  opt.max_logit_rows = 256;
  opt.max_kv_tokens = 4096;
  return opt;
}

// The golden's cases (make_quant_goldens.py: float64 transformers, activations
// never quantized); empty when there is none.
std::vector<Case> golden_cases(const std::string& golden_path) {
  std::vector<Case> cases;
  std::ifstream f(golden_path);
  const nlohmann::json golden = f.good() ? nlohmann::json::parse(f, nullptr, false) : nlohmann::json();
  if (!golden.is_object() || !golden.contains("cases")) return cases;
  for (const auto& c : golden["cases"]) {
    cases.push_back(Case{c["name"], c["ids"].get<std::vector<int32_t>>(), c["pos_argmax"].get<std::vector<int32_t>>(),
                         c["pos_margin"].get<std::vector<double>>(), kMinArgmaxMargin, {}});
    if (c.contains("last_logits")) cases.back().threshold = argmax_margin_threshold(c["last_logits"].get<std::vector<double>>());
  }
  return cases;
}

// Prompts of 1, 6, 31 and 90 random ids (below and above the T <= 8 kernels and
// fp8_w8a8_min_tokens); argmax and margin left empty.
std::vector<Case> random_prompts(int vocab_size) {
  std::mt19937_64 r(7);
  std::vector<Case> out;
  for (int n : {1, 6, 31, 90}) {
    Case c;
    c.name = "len" + std::to_string(n);
    for (int i = 0; i < n; ++i) c.ids.push_back(static_cast<int32_t>(r() % vocab_size));
    out.push_back(std::move(c));
  }
  return out;
}

// `prompts` (ids only) with `model`'s argmax and margin at every position, from one
// prefill each (model on a CPU backend).
std::vector<Case> cases_from(Model& model, std::vector<Case> prompts) {
  const int V = model.config().vocab_size;
  for (Case& c : prompts) {
    const int n = static_cast<int>(c.ids.size());
    const std::vector<float> l = prefill_logits(model, c.ids);
    if (l.empty()) return {};
    c.argmax.clear();
    c.margin.clear();
    for (int p = 0; p < n; ++p) {
      const float* row = l.data() + static_cast<size_t>(p) * V;
      std::vector<float> s(row, row + V);
      const int best = static_cast<int>(std::max_element(s.begin(), s.end()) - s.begin());
      std::partial_sort(s.begin(), s.begin() + 2, s.end(), std::greater<float>());
      c.argmax.push_back(best);
      c.margin.push_back(static_cast<double>(s[0]) - s[1]);
    }
    c.threshold = argmax_margin_threshold(std::vector<double>(l.end() - V, l.end()));
  }
  return prompts;
}

// `dir` on `gpu`: argmax at every position of every case, as one prefill per case
// (against `prefill_ref`) and token by token, eagerly and as step graphs (against
// `decode_ref`), equal to the reference's where its margin exceeds the case's
// threshold. Both references hold the same prompts. Prints one line; returns 0 or 1.
int check_model(Backend& gpu, const std::string& label, const std::string& dir, const Reference& prefill_ref,
                const Reference& decode_ref, uint64_t index) {
  auto model_or = load_model(dir, gpu, model_options());
  if (!model_or.ok() || prefill_ref.cases.empty() || decode_ref.cases.empty()) {
    std::printf("%-18s %-50s load failed: %s FAIL\n", label.c_str(), dir.c_str(),
                model_or.ok() ? "no reference" : model_or.status().to_string().c_str());
    return 1;
  }
  Model& model = **model_or;
  const int V = model.config().vocab_size, bs = model.block_size();
  int checked = 0, wrong = 0;
  double max_threshold = kMinArgmaxMargin;
  for (int mode = 0; mode < 3; ++mode) {  // prefill, decode, decode with step graphs
    const Reference& ref = mode == 0 ? prefill_ref : decode_ref;
    for (const Case& c : ref.cases) {
      const int n = static_cast<int>(c.ids.size());
      std::vector<int32_t> got(n, -1);
      if (mode == 0) {
        const std::vector<float> l = prefill_logits(model, c.ids);
        for (int p = 0; p < n && !l.empty(); ++p)
          got[p] = static_cast<int32_t>(std::max_element(l.begin() + static_cast<size_t>(p) * V, l.begin() + static_cast<size_t>(p + 1) * V) -
                                        (l.begin() + static_cast<size_t>(p) * V));
      } else {
        const int width = (n + bs - 1) / bs;
        for (int p = 0; p < n; ++p) {
          // Keys unique per model: a recorded step belongs to one model's tensors.
          const bool graph = mode == 2 && gpu.begin_graph((index << 32) | 0x9a000000u | static_cast<uint64_t>(width));
          const std::vector<int32_t> one = {c.ids[p]}, rows = {0};
          auto l = model.forward(seq_step(p, 1, bs, width), one, rows);
          if (graph) gpu.end_graph();
          if (!l.ok()) return 1;
          float lp = 0.0f;
          gpu.argmax_logprob(*l, &got[p], &lp);
        }
      }
      max_threshold = std::max(max_threshold, c.threshold);
      for (int p = 0; p < n; ++p) {
        if (c.margin[p] <= c.threshold_at(p)) continue;
        ++checked;
        if (got[p] != c.argmax[p]) {
          ++wrong;
          std::printf("  %s %s %s position %d: got %d, %s %d (margin %.3f)\n", dir.c_str(),
                      mode == 0 ? "prefill" : mode == 1 ? "decode" : "graphs", c.name.c_str(), p, got[p],
                      ref.name.c_str(), c.argmax[p], c.margin[p]);
        }
      }
    }
  }
  const bool ok = wrong == 0 && checked > 0;
  const std::string refs = prefill_ref.name == decode_ref.name
                               ? "prefill, decode, graphs vs " + decode_ref.name
                               : "prefill vs " + prefill_ref.name + "; decode, graphs vs " + decode_ref.name;
  std::printf("%-18s %-50s argmax equal at %d/%d positions (margin > %.2f; %s) %s\n", label.c_str(), dir.c_str(),
              checked - wrong, checked, max_threshold, refs.c_str(), ok ? "ok" : "FAIL");
  std::fflush(stdout);
  return ok ? 0 : 1;
}

// A model of preset `arch`'s widths cut to `layers` layers and `vocab` tokens, with
// random `format` weights (make_dummy_weights: the same weights on every backend for
// one seed); null when it cannot be made.
std::unique_ptr<Model> dummy_model(Backend& b, const std::string& arch, int layers, int vocab,
                                   const std::string& format) {
  auto preset = model_config_preset(arch);
  if (!preset.ok()) return nullptr;
  ModelConfig config = *preset;
  config.num_hidden_layers = layers;
  config.arch.layer_attention.resize(static_cast<size_t>(layers));  // the preset's first layers' kinds
  config.vocab_size = vocab;
  auto weights = make_dummy_weights(config, b, 77, format);
  if (!weights.ok()) return nullptr;
  ModelOptions opt = model_options();
  opt.max_tokens_per_step = 512;
  auto m = std::make_unique<Model>(std::move(config), GenerationDefaults{}, std::move(*weights), b, opt);
  return m->init().ok() ? std::move(m) : nullptr;
}

// The last position's logits [V] of a prefill of `prompt`, then of `steps` decode steps
// after it (each step's block table as wide as its context needs, so that a run can
// cross the decode stack kernel's key limit), eagerly or as step graphs (keys from
// `key`). The steps' tokens: *next's, or with fill, each the argmax of the logits
// before it, appended to *next. Empty on an error.
std::vector<std::vector<float>> model_steps(Model& m, const std::vector<int32_t>& prompt, int steps,
                                            std::vector<int32_t>* next, bool fill, bool graphs, uint64_t key) {
  const int n = static_cast<int>(prompt.size()), bs = m.block_size(), V = m.config().vocab_size;
  std::vector<std::vector<float>> out;
  auto keep = [&](const StatusOr<Tensor>& l) {
    if (!l.ok()) return false;
    out.emplace_back(static_cast<size_t>(V));
    m.backend().copy_to_host(out.back().data(), *l, static_cast<size_t>(V) * 4);
    return true;
  };
  const std::vector<int32_t> last = {n - 1};
  if (!keep(m.forward(seq_step(0, n, bs, (n + bs - 1) / bs), prompt, last))) return {};
  for (int i = 0; i < steps; ++i) {
    const int pos = n + i, width = (pos + 1 + bs - 1) / bs;
    if (fill) {
      next->push_back(static_cast<int32_t>(std::max_element(out.back().begin(), out.back().end()) - out.back().begin()));
    }
    if (static_cast<int>(next->size()) <= i) return {};
    const bool graph = graphs && m.backend().begin_graph(key | static_cast<uint64_t>(width));
    const std::vector<int32_t> one = {(*next)[static_cast<size_t>(i)]}, rows = {0};
    auto l = m.forward(seq_step(pos, 1, bs, width), one, rows);
    if (graph) m.backend().end_graph();
    if (!keep(l)) return {};
  }
  return out;
}

// The largest of max |got - ref| / max |ref| over the steps; infinity on a mismatch of sizes.
double steps_rel_error(const std::vector<std::vector<float>>& got, const std::vector<std::vector<float>>& ref) {
  if (got.size() != ref.size() || ref.empty()) return INFINITY;
  double worst = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    double diff = 0.0, scale = 0.0;
    for (size_t v = 0; v < ref[i].size(); ++v) {
      diff = std::max(diff, std::fabs(static_cast<double>(got[i][v]) - ref[i][v]));
      scale = std::max(scale, std::fabs(static_cast<double>(ref[i][v])));
    }
    worst = std::max(worst, scale > 0.0 ? diff / scale : diff);
  }
  return worst;
}

// A whole model through the decode stack kernel (gpu_stack) against the CPU: a prompt
// of `prompt_len` random tokens, then `steps` decode steps, each fed the CPU's argmax
// of the step before; eagerly and as step graphs. The kernel's logits must be within
// max(2%, twice the kernels a layer's (gpu_layers) distance from the CPU), and it must
// have run for every step whose block table holds at most kStackMaxKeys keys (eagerly;
// a graph records it once; for none where `taken` is false: options the kernel refuses for
// this format). Prints one line a form; returns the number of failures.
int check_decode_stack_model(Backend& cpu, Backend& gpu_layers, Backend& gpu_stack, const std::string& format,
                             int prompt_len, int steps, uint64_t key, bool taken) {
  const std::string arch = "llama-3.2-3b";
  const int layers = 3, vocab = 4096;
  char shape[128];
  std::snprintf(shape, sizeof shape, "%s x%d layers, %s, ctx %d+%d", arch.c_str(), layers, format.c_str(), prompt_len,
                steps);
  auto on_cpu = dummy_model(cpu, arch, layers, vocab, format);
  auto on_layers = dummy_model(gpu_layers, arch, layers, vocab, format);
  auto on_stack = dummy_model(gpu_stack, arch, layers, vocab, format);
  if (!on_cpu || !on_layers || !on_stack) {
    std::printf("decode_stack_model %-50s cannot make the models FAIL\n", shape);
    return 1;
  }
  std::mt19937_64 r(key);
  std::vector<int32_t> prompt(static_cast<size_t>(prompt_len)), next;
  for (int32_t& id : prompt) id = static_cast<int32_t>(r() % vocab);
  // The CPU's run, each step fed its own argmax; the GPUs are fed the same tokens.
  const std::vector<std::vector<float>> ref = model_steps(*on_cpu, prompt, steps, &next, true, false, 0);
  const double layers_err = steps_rel_error(model_steps(*on_layers, prompt, steps, &next, false, false, 0), ref);
  const double tol = std::max(0.02, 2.0 * layers_err);
  int expected = 0;  // decode steps within the kernel's key limit
  for (int i = 0; i < steps; ++i) {
    const int bs = on_stack->block_size(), pos = prompt_len + i;
    if (taken && (pos + 1 + bs - 1) / bs * bs <= cuda::kStackMaxKeys) ++expected;
  }
  int failures = 0;
  for (bool graphs : {false, true}) {
    const int64_t before = cuda_decode_stack_launches(gpu_stack);
    const double err = steps_rel_error(model_steps(*on_stack, prompt, steps, &next, false, graphs, key << 32), ref);
    const int64_t launched = cuda_decode_stack_launches(gpu_stack) - before;
    const bool ran = graphs ? (launched >= 1) == (expected >= 1) : launched == expected;
    const bool ok = err <= tol && ran;
    failures += ok ? 0 : 1;
    std::printf("decode_stack_model %-50s %s: %.3g of the cpu's logits (kernels a layer %.3g, tolerance %.3g); "
                "%lld launches (%d steps within %d keys) %s\n",
                shape, graphs ? "graphs" : "eager ", err, layers_err, tol, static_cast<long long>(launched), expected,
                cuda::kStackMaxKeys, ok ? "ok" : "FAIL");
  }
  std::fflush(stdout);
  return failures;
}

// One quantized model folder: the plain reference is the golden, or the plain CPU
// where there is none yet. A model with FP8 W8A8 Linears is checked twice: on
// `gpu`, whose prefills of >= fp8_w8a8_min_tokens tokens quantize activations,
// prefill against the emulating CPU (never the golden: transformers does not
// quantize activations) and decode against the plain reference; and on
// `gpu_w8a16` (W8A8 off) all of it against the plain reference.
int check_fixture(Backend& cpu, CpuBackend& cpu_w8a8, Backend& gpu, Backend& gpu_w8a16, const std::string& dir,
                  const std::string& golden_path, uint64_t index) {
  Reference plain{"golden", golden_cases(golden_path)};
  if (plain.cases.empty()) {
    auto model = load_model(dir, cpu, model_options());
    if (!model.ok()) {
      std::printf("%-18s %-50s load failed on the cpu: %s FAIL\n", "qmodel", dir.c_str(), model.status().to_string().c_str());
      return 1;
    }
    plain = Reference{"cpu (no golden)", cases_from(**model, random_prompts((*model)->config().vocab_size))};
  }
  const size_t w8a8_before = cpu_w8a8.w8a8_weights();
  auto emulating = load_model(dir, cpu_w8a8, model_options());
  if (!emulating.ok() || cpu_w8a8.w8a8_weights() == w8a8_before)
    return check_model(gpu, "qmodel", dir, plain, plain, index);
  Reference w8a8{"cpu w8a8", cases_from(**emulating, plain.cases)};
  // What the activation quantization alone moves: the emulating CPU's logits
  // against the plain CPU's, position by position.
  auto plain_cpu = load_model(dir, cpu, model_options());
  if (!plain_cpu.ok()) return 1;
  const int V = (*emulating)->config().vocab_size;
  int excluded = 0;
  for (Case& c : w8a8.cases) {
    const std::vector<float> a = prefill_logits(**emulating, c.ids), b = prefill_logits(**plain_cpu, c.ids);
    if (a.size() != b.size() || a.empty()) return 1;
    c.noise_threshold.assign(c.ids.size(), 0.0);
    for (size_t p = 0; p < c.ids.size(); ++p) {
      double d = 0.0;
      for (int v = 0; v < V; ++v) d = std::max(d, std::fabs(static_cast<double>(a[p * V + v]) - b[p * V + v]));
      c.noise_threshold[p] = 2.0 * d;
      if (c.margin[p] > c.threshold && c.margin[p] <= c.threshold_at(static_cast<int>(p))) ++excluded;
    }
  }
  std::printf("%-18s %-50s W8A8 prefill: %d position(s) with margin > %.2f left out, within twice the logit change "
              "activation quantization causes there\n",
              "qmodel", dir.c_str(), excluded, kMinArgmaxMargin);
  int failures = check_model(gpu, "qmodel", dir, w8a8, plain, index);
  failures += check_model(gpu_w8a16, "qmodel w8a16", dir, plain, plain, index);
  return failures;
}
// Whether the kernel takes a model of `group`-column groups with the CTA attention on or off
// (it runs in the 16-warp forms only: cuda::stack_cta_attention_fits).
bool stack_takes_attention(bool cta_attention, int64_t group) {
  return !cta_attention || cuda::stack_cta_attention_fits(static_cast<int>(group));
}

}  // namespace

int run_ops(CpuBackend& cpu, Backend& gpu) {
  KR_CHECK_MSG(cpu.options().emulate_fp8_w8a8, "run_ops: the CPU reference must emulate the FP8 W8A8 path");
  g_failures = 0;
  g_w8a8_min_tokens = cpu.options().fp8_w8a8_min_tokens;
  Env e(cpu, gpu);
  const std::vector<int> all_t = {1, 2, 3, 5, 8, 9, 33, 64, 200, 300};
  // Odd shapes, every format: N not a multiple of 32, 3 or 5 groups, K padded.
  for (const Spec& s : kSpecs) {
    for (auto [N, K] : {std::pair<int64_t, int64_t>{40, 384}, {72, 320}, {100, 96}, {24, 136}}) {
      if (!spec_fits(s, K)) continue;
      test_matmul(e, s, N, K, all_t);
    }
  }
  // Llama-3.2-3B shapes of the main formats (batch 1, 8, 64 and a prefill).
  for (const char* name : {"awq-int4-g128", "mlx-int4-g64", "gptq-int8-g128", "fp8-channel-dynamic", "fp8-tensor-static",
                           "gptq-int4-g128-actorder"}) {
    test_matmul(e, spec(name), 5120, 3072, {1, 8, 64, 300});
    test_matmul(e, spec(name), 3072, 8192, {1, 4, 64});
  }
  test_matmul(e, spec("mlx-int4-g64"), 128256 / 4, 3072, {1, 3}, true);  // a quantized lm_head into f32 logits
  // 8 row blocks of the wgmma kernel on a K split of 3-step slices: the CTAs' rotated
  // slices wrap to their first step in the middle of a 128-column group.
  test_matmul(e, spec("awq-int4-g128"), 1024, 1152, {40, 64});
  test_matmul(e, spec("fp8-block128"), 4096, 4096, {1, 64, 300});
  // FP8 W8A8 at decode batch sizes (the decode-size GEMM the backend under test runs:
  // CudaOptions::fp8_wgmma_gemm_max_tokens / fp8_small_gemm_max_tokens): N % 16 == 0
  // with a partial row block, K not a multiple of a stage, and an 8B shape.
  for (const char* name : {"fp8-channel-dynamic", "fp8-tensor-static"})
    for (auto [N, K] : {std::pair<int64_t, int64_t>{48, 96}, {80, 160}, {144, 1344}})
      test_matmul(e, spec(name), N, K, {9, 16, 33, 64});
  test_matmul(e, spec("fp8-channel-dynamic"), 4096, 4096, {16, 64});
  // Quantized embeddings (MLX).
  test_embedding(e, spec("mlx-int4-g64"), 1000, 3072, 7, 1.0f);
  test_embedding(e, spec("mlx-int8-g32"), 50, 96, 3, 1.0f);
  test_embedding(e, spec("mlx-int4-g64"), 1000, 2560, 5, std::sqrt(2560.0f));  // Gemma's scaled embedding
  // Fused ops at batch 1 (norm prologue and not), small batches, the T > 8 kernels and prefill.
  for (bool norm : {false, true}) {
    for (const char* name : {"awq-int4-g128", "mlx-int4-g64", "fp8-channel-dynamic"}) {
      test_qkv_rope_store(e, spec(name), {127}, {1}, 3072, 24, 8, 128, norm);
      test_matmul_silu_mul(e, spec(name), 1, 3072, 8192, norm);
    }
    test_qkv_rope_store(e, spec("gptq-int4-g128-actorder"), {20}, {1}, 3072, 24, 8, 128, norm);
    test_qkv_rope_store(e, spec("gptq-int8-g128"), {5, 0, 90}, {1, 1, 1}, 384, 6, 2, 64, norm);
    test_qkv_rope_store(e, spec("gptq-int4-g32-sym"), {0}, {40}, 384, 6, 2, 64, norm);
    test_qkv_rope_store(e, spec("awq-int4-g128"), {0}, {300}, 384, 6, 2, 64, norm);
    test_qkv_rope_store(e, spec("fp8-tensor-static"), {3, 9}, {1, 20}, 384, 6, 2, 64, norm);
    test_qkv_rope_store(e, spec("mlx-int4-g64"), {7}, {1}, 384, 4, 2, 48, norm);  // D % 32 != 0: composed
    test_matmul_silu_mul(e, spec("mlx-int8-g32"), 5, 384, 48, norm);
    test_matmul_silu_mul(e, spec("awq-int4-g128"), 64, 3072, 8192, norm);
    test_matmul_silu_mul(e, spec("ct-int4-channel"), 300, 384, 48, norm);
    test_matmul_silu_mul(e, spec("gptq-int4-g128-actorder"), 3, 384, 48, norm);
    test_matmul_silu_mul(e, spec("fp8-channel-dynamic"), 40, 384, 48, norm);
    test_matmul_silu_mul(e, spec("mlx-int4-g64"), 1, 384, 24, norm);  // I % 16 != 0: composed
  }
  // The families' options in the fused ops, on each path (T 1 and 5: the T <= 8
  // kernels; 40: T > 8; 300: dequantize + cuBLAS): Qwen2's q/k/v biases in the
  // RoPE epilogue, per-head q/k norms (Qwen3, Gemma 3: the matmul, then the rope
  // kernel), Gemma's (1 + w) norm prologue and GeGLU epilogue.
  const Fam qwen2{NormKind::kTimesWeight, true, false, Activation::kSilu};
  const Fam qwen3{NormKind::kTimesWeight, false, true, Activation::kSilu};
  const Fam gemma{NormKind::kTimesOnePlusWeight, false, true, Activation::kGeluTanh};
  for (bool norm : {false, true}) {
    for (const char* name : {"awq-int4-g128", "mlx-int4-g64", "fp8-channel-dynamic", "gptq-int4-g128-actorder"}) {
      test_qkv_rope_store(e, spec(name), {127}, {1}, 3072, 24, 8, 128, norm, qwen2);
      test_qkv_rope_store(e, spec(name), {127}, {1}, 3072, 24, 8, 128, norm, qwen3);
      test_qkv_rope_store(e, spec(name), {20}, {1}, 3072, 24, 8, 128, norm, gemma);
      test_matmul_silu_mul(e, spec(name), 1, 3072, 8192, norm, gemma);
    }
    test_qkv_rope_store(e, spec("awq-int4-g128"), {5, 0, 90, 3, 7}, {1, 1, 1, 1, 1}, 384, 6, 2, 64, norm, qwen2);
    test_qkv_rope_store(e, spec("gptq-int4-g32-sym"), {0}, {40}, 384, 6, 2, 64, norm, qwen2);
    test_qkv_rope_store(e, spec("awq-int4-g128"), {0}, {300}, 384, 6, 2, 64, norm, qwen2);
    test_qkv_rope_store(e, spec("mlx-int4-g64"), {3, 9}, {1, 20}, 384, 6, 2, 64, norm, gemma);
    test_matmul_silu_mul(e, spec("mlx-int8-g32"), 5, 384, 48, norm, gemma);
    test_matmul_silu_mul(e, spec("awq-int4-g128"), 40, 384, 48, norm, gemma);
    test_matmul_silu_mul(e, spec("ct-int4-channel"), 300, 384, 48, norm, gemma);
  }
  return g_failures;
}

int run_decode_stack_models(CpuBackend& cpu, Backend& gpu_layers, Backend& gpu_stack, bool cta_attention) {
  int failures = 0;
  uint64_t key = 0x5d00;
  const std::pair<const char*, int> formats[] = {{"awq", 128}, {"mlx4", 64}};  // (format, group)
  for (const auto& [format, group] : formats) {
    const bool taken = stack_takes_attention(cta_attention, group);
    failures += check_decode_stack_model(cpu, gpu_layers, gpu_stack, format, 24, 12, ++key, taken);
    failures += check_decode_stack_model(cpu, gpu_layers, gpu_stack, format, 490, 30, ++key, taken);  // past 512 keys
  }
  return failures;
}

int run_decode_stack(CpuBackend& cpu, Backend& gpu, bool cta_attention) {
  g_failures = 0;
  Env e(cpu, gpu);
  const Fam gemma{NormKind::kTimesOnePlusWeight, false, false, Activation::kGeluTanh};
  for (const char* name : {"awq-int4-g128", "mlx-int4-g64"}) {
    const bool f = stack_takes_attention(cta_attention, spec(name).group);  // else the composed ops
    test_decode_stack(e, spec(name), 2, 128, 4, 2, 256, 0, f);       // the first token; most warps idle
    test_decode_stack(e, spec(name), 3, 384, 4, 1, 1152, 37, f, {}, 3);  // GQA 4, I % 32 != 0
    test_decode_stack(e, spec(name), 2, 3072, 24, 8, 8192, 127, f);  // Llama-3.2-3B, 5 splits
    test_decode_stack(e, spec(name), 2, 2560, 32, 8, 9728, 460, f);  // Qwen3-4B's widths, 15-16 splits
    test_decode_stack(e, spec(name), 2, 384, 6, 2, 1024, 300, f, gemma);  // (1 + w) norms, GeGLU
  }
  test_decode_stack(e, spec("awq-int4-g128"), 1, 4096, 32, 8, 14336, 470, stack_takes_attention(cta_attention, 128),
                    {}, 2, 32);  // Llama-3.1-8B, 480 keys
  // Not taken by the kernel: the composed ops run.
  test_decode_stack(e, spec("gptq-int4-g32-sym"), 2, 384, 6, 2, 1024, 20, false);        // 32-column groups
  test_decode_stack(e, spec("gptq-int4-g128-actorder"), 2, 384, 6, 2, 1024, 20, false);  // act-order
  test_decode_stack(e, spec("gptq-int8-g128"), 2, 384, 6, 2, 1024, 20, false);           // 8-bit codes
  test_decode_stack(e, spec("awq-int4-g128"), 1, 384, 6, 2, 1024, 520, false);           // past 512 keys
  return g_failures;
}

int run_gemv_kernels(CpuBackend& cpu, const std::vector<std::pair<std::string, Backend*>>& kernels) {
  KR_CHECK_MSG(cpu.options().emulate_fp8_w8a8, "run_gemv_kernels: the CPU reference must emulate the FP8 W8A8 path");
  g_failures = 0;
  g_w8a8_min_tokens = cpu.options().fp8_w8a8_min_tokens;
  const std::vector<int> gemv_t = {1, 2, 3, 4, 5, 6, 7, 8};
  for (const auto& [label, gpu] : kernels) {
    g_tag = " [" + label + "]";
    Env e(cpu, *gpu);
    // Every format at odd shapes (N not a multiple of 32, K padded, 1, 3, 5 or 9
    // groups, K with fewer steps than some forced slices), T = 1..8.
    for (const Spec& s : kSpecs)
      for (auto [N, K] : {std::pair<int64_t, int64_t>{40, 384}, {72, 320}, {100, 96}, {24, 136}, {200, 1152}}) {
        if (!spec_fits(s, K)) continue;
        test_matmul(e, s, N, K, gemv_t);
      }
    // Llama-3.2-3B / 3.1-8B shapes (many groups, every K split the planner picks).
    test_matmul(e, spec("awq-int4-g128"), 3072, 3072, {1, 8});
    test_matmul(e, spec("awq-int4-g128"), 3072, 8192, {1, 3});
    test_matmul(e, spec("mlx-int4-g64"), 5120, 3072, {1, 6});
    test_matmul(e, spec("gptq-int4-g32-sym"), 16384, 3072, {1});
    test_matmul(e, spec("gptq-int8-g128"), 3072, 3072, {1, 8});
    test_matmul(e, spec("fp8-channel-dynamic"), 4096, 14336, {1, 8});
    test_matmul(e, spec("fp8-block128"), 6144, 4096, {1, 2});
    test_matmul(e, spec("fp8-channel-w8a16"), 28672, 4096, {1});
    test_matmul(e, spec("fp8-block128"), 1024, 14336, {1});  // 112 groups, 4 passes of the row kernel
    test_matmul(e, spec("fp8-tensor-static"), 128256 / 8, 4096, {1}, true);  // f32 logits
    test_matmul(e, spec("mlx-int4-g64"), 128256 / 8, 3072, {1}, true);  // f32 logits
    // The fused epilogues (RoPE + KV store, SwiGLU) with and without the norm prologue.
    for (bool norm : {false, true}) {
      for (const char* name : {"awq-int4-g128", "mlx-int4-g64", "fp8-channel-dynamic", "gptq-int8-g128"}) {
        test_qkv_rope_store(e, spec(name), {127}, {1}, 3072, 24, 8, 128, norm);
        test_matmul_silu_mul(e, spec(name), 1, 3072, 8192, norm);
      }
      test_qkv_rope_store(e, spec("mlx-int4-g64"), {5, 0, 90, 3, 7, 1, 2, 60}, {1, 1, 1, 1, 1, 1, 1, 1}, 384, 6, 2, 64,
                          norm, Fam{NormKind::kTimesWeight, true, false, Activation::kSilu});
      test_qkv_rope_store(e, spec("gptq-int4-g32-sym"), {3, 9}, {1, 1}, 384, 6, 2, 64, norm,
                          Fam{NormKind::kTimesOnePlusWeight, false, false, Activation::kSilu});
      test_matmul_silu_mul(e, spec("mlx-int8-g32"), 7, 384, 48, norm,
                           Fam{NormKind::kTimesOnePlusWeight, false, false, Activation::kGeluTanh});
      test_matmul_silu_mul(e, spec("awq-int4-g128"), 4, 1152, 208, norm);
      // FP8 at T = 1 (the row kernel under --qgemv row / auto): block-128 and
      // per-tensor scales in the fused epilogues, q/k/v biases, FP8 KV caches (Llama
      // 8B's qkv), K < 2048 (one vector per thread and row), and a norm prologue past
      // K = 4096 (the mma kernel runs).
      test_qkv_rope_store(e, spec("fp8-block128"), {127}, {1}, 3072, 24, 8, 128, norm);
      test_qkv_rope_store(e, spec("fp8-channel-dynamic"), {40}, {1}, 4096, 32, 8, 128, norm, Fam{}, true);
      test_qkv_rope_store(e, spec("fp8-tensor-static"), {33}, {1}, 1152, 6, 2, 64, norm,
                          Fam{NormKind::kTimesOnePlusWeight, true, false, Activation::kSilu});
      test_matmul_silu_mul(e, spec("fp8-block128"), 1, 3072, 8192, norm);
      test_matmul_silu_mul(e, spec("fp8-tensor-static"), 1, 1152, 208, norm,
                           Fam{NormKind::kTimesOnePlusWeight, false, false, Activation::kGeluTanh});
      test_matmul_silu_mul(e, spec("fp8-channel-w8a16"), 1, 4160, 96, norm);
    }
  }
  g_tag.clear();
  return g_failures;
}

int run_batched_kernels(CpuBackend& cpu, const std::vector<std::pair<std::string, Backend*>>& kernels,
                        int dense_min_tokens) {
  KR_CHECK_MSG(cpu.options().emulate_fp8_w8a8, "run_batched_kernels: the CPU reference must emulate the FP8 W8A8 path");
  g_failures = 0;
  g_w8a8_min_tokens = cpu.options().fp8_w8a8_min_tokens;
  g_dense_min_tokens = g_dense8_min_tokens = dense_min_tokens;
  const std::vector<int> batched_t = {9, 17, 64, 100, 256};
  for (const auto& [label, gpu] : kernels) {
    g_tag = " [" + label + "]";
    Env e(cpu, *gpu);
    // Every format at odd shapes: N not a multiple of 32, row blocks of 8 tile pairs
    // with 1 or 3 pairs in the last (264: 9 pairs; 520: 17), K padded, 1..42
    // groups, fewer steps than the K slices a small grid asks for.
    for (const Spec& s : kSpecs)
      for (auto [N, K] : {std::pair<int64_t, int64_t>{40, 384}, {72, 320}, {100, 96}, {24, 136}, {200, 1152},
                          {264, 640}, {520, 1344}}) {
        if (!spec_fits(s, K)) continue;
        test_matmul(e, s, N, K, batched_t);
      }
    // Llama-3.2-3B shapes (many groups, the K slices the planner picks).
    // (4-bit on wgmma: passes of 128 tokens, the last of 64 where it has no more: 150 = 128 + 22.)
    test_matmul(e, spec("awq-int4-g128"), 3072, 3072, {17, 64, 100, 150});
    test_matmul(e, spec("awq-int4-g128"), 3072, 8192, {64});
    test_matmul(e, spec("mlx-int4-g64"), 5120, 3072, {64, 200});
    test_matmul(e, spec("gptq-int4-g32-sym"), 16384, 3072, {64});
    test_matmul(e, spec("gptq-int4-g128-actorder"), 5120, 3072, {33, 64});
    test_matmul(e, spec("gptq-int8-g128"), 3072, 3072, {33, 64});
    test_matmul(e, spec("mlx-int8-g32"), 3072, 8192, {64});
    test_matmul(e, spec("mlx-int4-g64"), 128256 / 8, 3072, {17}, true);  // f32 logits
    // The fused epilogues (RoPE + KV store incl. FP8 caches, SwiGLU) at T > 8: Llama
    // shapes, then small ones with the norm run before the kernel too.
    for (const char* name : {"awq-int4-g128", "mlx-int4-g64", "gptq-int8-g128", "mlx-int8-g32"}) {
      test_qkv_rope_store(e, spec(name), {127, 5, 0, 60}, {1, 16, 40, 7}, 3072, 24, 8, 128, false);
      test_matmul_silu_mul(e, spec(name), 64, 3072, 8192, false);
    }
    test_qkv_rope_store(e, spec("awq-int4-g128"), {40, 3}, {1, 63}, 3072, 24, 8, 128, false, Fam{}, true);
    // More tokens than a wgmma pass: the second pass's positions, slots and rows (150 = 128 + 22, 200 = 128 + 72).
    test_qkv_rope_store(e, spec("awq-int4-g128"), {0, 300, 17}, {100, 45, 5}, 3072, 24, 8, 128, false);
    test_matmul_silu_mul(e, spec("mlx-int4-g64"), 200, 3072, 8192, false);
    test_matmul_silu_mul(e, spec("gptq-int4-g128-actorder"), 9, 3072, 8192, false);
    for (bool norm : {false, true}) {
      test_qkv_rope_store(e, spec("mlx-int4-g64"), {5, 0, 90, 3, 7, 1, 2, 60}, {1, 2, 1, 3, 1, 1, 1, 7}, 384, 6, 2,
                          64, norm, Fam{NormKind::kTimesWeight, true, false, Activation::kSilu});
      test_qkv_rope_store(e, spec("gptq-int4-g32-sym"), {3, 9}, {50, 50}, 384, 6, 2, 64, norm,
                          Fam{NormKind::kTimesOnePlusWeight, false, false, Activation::kSilu});
      test_matmul_silu_mul(e, spec("mlx-int8-g32"), 17, 384, 48, norm,
                           Fam{NormKind::kTimesOnePlusWeight, false, false, Activation::kGeluTanh});
      test_matmul_silu_mul(e, spec("awq-int4-g128"), 100, 1152, 208, norm);
      test_matmul_silu_mul(e, spec("gptq-int4-g128-actorder"), 33, 1152, 208, norm);
      test_qkv_rope_store(e, spec("mlx-int8-g32"), {0, 17}, {64, 1}, 384, 6, 2, 64, norm, Fam{}, true);
    }
  }
  g_tag.clear();
  g_dense_min_tokens = kDefaultDenseMin;
  g_dense8_min_tokens = kDefaultDense8Min;
  return g_failures;
}

int run_fp8_small_kernels(CpuBackend& cpu, const std::vector<std::pair<std::string, Backend*>>& kernels) {
  KR_CHECK_MSG(cpu.options().emulate_fp8_w8a8, "run_fp8_small_kernels: the CPU reference must emulate the FP8 W8A8 path");
  g_failures = 0;
  g_w8a8_min_tokens = cpu.options().fp8_w8a8_min_tokens;
  // T = 9 and 16 (small-T GEMM: 1 and 2 token tiles, 128-row blocks; wgmma GEMM: N =
  // 16), 24 and 32 (4 tiles, 256-row blocks; N = 32) on the odd shapes, 33 and 64 (8
  // tiles; N = 64).
  const std::vector<int> small_t = {9, 16, 33, 64};
  const std::vector<int> odd_t = {9, 16, 24, 32, 33, 64};
  for (const auto& [label, gpu] : kernels) {
    g_tag = " [" + label + "]";
    Env e(cpu, *gpu);
    const bool forced = label.find("-S") != std::string::npos;
    // Odd shapes: N % 16 == 0 with a partial 128- or 256-row block (48, 80, 144, 1040), K % 64 ==
    // 32 (96, 160; and K % 128 != 0 for the wgmma GEMM's 128-column stages), K with fewer
    // chunks than a forced split (96), and two the kernels do not take (N % 16 != 0;
    // K % 16 != 0), which fall back to cuBLASLt or W8A16.
    for (const char* name : {"fp8-channel-dynamic", "fp8-tensor-static"}) {
      for (auto [N, K] : {std::pair<int64_t, int64_t>{48, 96}, {80, 160}, {144, 1344}, {1040, 4160}, {40, 384},
                          {64, 136}}) {
        if (!spec_fits(spec(name), K)) continue;
        test_matmul(e, spec(name), N, K, odd_t);
      }
    }
    // Llama-3.1-8B's four shapes (qkv, o_proj, gate_up, down); the forced splits at
    // one T each (the CPU reference of the big shapes is the slow part).
    const std::pair<int64_t, int64_t> llama8b[] = {{6144, 4096}, {4096, 4096}, {28672, 4096}, {4096, 14336}};
    for (auto [N, K] : llama8b) test_matmul(e, spec("fp8-channel-dynamic"), N, K, forced ? std::vector<int>{33} : small_t);
    test_matmul(e, spec("fp8-tensor-static"), 4096, 14336, {64});
    if (!forced) test_matmul(e, spec("fp8-channel-dynamic"), 4096, 14336, {32});  // 4 token tiles, 16 slices
    // The W8A8 GEMM on the FP8 rows the op before wrote (Fp8Rows: the norm prologue
    // and the GLU), at 64 and 23 rows.
    for (bool norm : {false, true}) {
      test_qkv_rope_store(e, spec("fp8-channel-dynamic"), {127, 5, 0, 60}, {1, 16, 40, 7}, 4096, 32, 8, 128, norm);
      test_qkv_rope_store(e, spec("fp8-tensor-static"), {3, 9}, {3, 20}, 384, 6, 2, 64, norm);
      test_matmul_silu_mul(e, spec("fp8-channel-dynamic"), 64, 4096, 14336, norm);
      test_matmul_silu_mul(e, spec("fp8-tensor-static"), 23, 384, 48, norm);
    }
  }
  g_tag.clear();
  return g_failures;
}

int run_models(Backend& cpu, CpuBackend& cpu_w8a8, Backend& gpu, Backend& gpu_w8a16, const std::string& fixtures,
               const std::string& goldens) {
  KR_CHECK_MSG(cpu_w8a8.options().emulate_fp8_w8a8, "run_models: cpu_w8a8 must emulate the FP8 W8A8 path");
  std::ifstream f(fixtures + "/models.json");
  if (!f.good()) {
    std::printf("qmodel             cannot read %s/models.json FAIL\n", fixtures.c_str());
    return 1;
  }
  int failures = 0;
  uint64_t index = 0x5100;
  for (const std::string& name : nlohmann::json::parse(f).get<std::vector<std::string>>())
    failures += check_fixture(cpu, cpu_w8a8, gpu, gpu_w8a16, fixtures + "/" + name,
                              goldens + "/" + name + "/expected.json", ++index);
  return failures;
}

}  // namespace kr::quant_ops
