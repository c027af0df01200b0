// GCC 12 reports a false -Wrestrict inside std::string's operator+ when it inlines
// "literal" + std::to_string(...) chains (GCC bug 105329); CI builds with -Werror.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include "bench/cuda/fp8_act_check.h"

#include <cuda_runtime_api.h>

#include <cmath>
#include <fstream>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/cuda/cuda_qgemm.h"
#include "backend/dtype_convert.h"
#include "backend/quantized_matrix.h"
#include "model/model.h"
#include "model/single_seq_step_for_test.h"

namespace kr {
namespace {

std::mt19937_64 g_rng(1313);

struct Scheme {
  const char* name;
  ActQuant act;
  float ub;  // QuantizedMatrix::activation_scale_ub
};
// ub 0.5: below most rows' max |x| (normed rows reach about 4, GLU rows about 1), so the bound applies.
const Scheme kSchemes[] = {
    {"dynamic", ActQuant::kDynamicToken, 0.0f},
    {"dynamic-ub", ActQuant::kDynamicToken, 0.5f},
    {"static", ActQuant::kStaticTensor, 0.0f},
};

struct Shape {
  const char* name;
  int64_t H, I;
  int q_heads, kv_heads, head_dim;
  NormKind norm;
  bool out_norms;  // Gemma's post-attention / post-feedforward norms
  Activation act;
  bool qkv_bias = false;  // Qwen2's q/k/v biases
  bool kv_fp8 = false;    // an FP8 KV cache (e4m3 over per-layer scales)
  int start = 0;          // position of the step's first token
};
const Shape kShapes[] = {
    {"llama-8b", 4096, 14336, 32, 8, 128, NormKind::kTimesWeight, false, Activation::kSilu},
    {"gemma", 2560, 10240, 8, 4, 256, NormKind::kTimesOnePlusWeight, true, Activation::kGeluTanh},
    {"qwen2-1.5b", 1536, 8960, 12, 2, 128, NormKind::kTimesWeight, false, Activation::kSilu, true, true, 5000},
};

// A W8A8 FP8 matrix [N, K] with per-channel weight scales and the scheme's activations.
QuantizedMatrix w8a8_matrix(const Scheme& s, int64_t N, int64_t K, const char* name) {
  QuantizedMatrix m;
  m.kind = QuantKind::kFp8;
  m.format = "compressed-tensors";
  m.name = std::string(name) + " [" + std::to_string(N) + ", " + std::to_string(K) + "]";
  m.N = N;
  m.K = K;
  m.bits = 8;
  m.group_size = K;
  m.scale_layout = ScaleLayout::kGroup;
  m.scale_dtype = DType::kF32;
  m.act = s.act;
  if (s.act == ActQuant::kStaticTensor) m.input_scale = 2.5f / 448.0f;
  m.activation_scale_ub = s.ub;
  m.fp8.resize(static_cast<size_t>(N * K));
  for (size_t i = 0; i < m.fp8.size(); i += 8) {
    uint64_t r = g_rng();
    for (size_t j = 0; j < 8 && i + j < m.fp8.size(); ++j, r >>= 8) {
      uint8_t b = static_cast<uint8_t>(r);
      if ((b & 0x7F) == 0x7F) b ^= 1;  // no NaN codes
      m.fp8[i + j] = b;
    }
  }
  std::uniform_real_distribution<float> u(0.5f, 1.5f);
  const float base = 1.0f / (100.0f * std::sqrt(static_cast<float>(K)));  // outputs of about 1
  for (int64_t n = 0; n < N; ++n) m.scales.push_back(base * u(g_rng));
  const Status st = m.validate();
  if (!st.ok()) {
    std::fprintf(stderr, "fp8_act_check: %s\n", st.to_string().c_str());
    std::abort();
  }
  if (!fp8_runs_w8a8(m)) {
    std::fprintf(stderr, "fp8_act_check: %s does not run as W8A8\n", m.name.c_str());
    std::abort();
  }
  return m;
}

std::vector<uint16_t> rand_bf16(size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<uint16_t> v(n);
  for (uint16_t& x : v) x = f32_to_bf16(d(g_rng));
  return v;
}

// One backend's tensors and weights for a layer of `shape`.
struct Side {
  Backend& b;
  std::vector<Tensor> allocs;
  explicit Side(Backend& backend) : b(backend) {}
  ~Side() {
    for (Tensor& t : allocs) b.free(t);
  }
  Side(const Side&) = delete;
  Side& operator=(const Side&) = delete;
  Tensor alloc(DType d, std::initializer_list<int64_t> dims) {
    allocs.push_back(b.alloc(d, dims));
    return allocs.back();
  }
  Tensor bf16(std::initializer_list<int64_t> dims, const std::vector<uint16_t>& v) {
    Tensor t = alloc(DType::kBF16, dims);
    b.copy_from_host(t, v.data(), v.size() * 2);
    return t;
  }
  Tensor weight(std::initializer_list<int64_t> dims, std::vector<uint16_t>& v) {
    Tensor t = b.upload_weight(Tensor(v.data(), DType::kBF16, dims));
    allocs.push_back(t);
    return t;
  }
  std::vector<uint8_t> bytes(const Tensor& t) {
    std::vector<uint8_t> out(t.bytes());
    b.copy_to_host(out.data(), t, out.size());
    return out;
  }
};

int g_fail = 0;

void line(const std::string& what, bool ok, const std::string& detail = "") {
  if (!ok) ++g_fail;
  std::printf("%-64s %s%s%s\n", what.c_str(), ok ? "ok" : "FAIL", detail.empty() ? "" : "  ", detail.c_str());
  std::fflush(stdout);
}

// The same bytes on both backends (the fused output against the unfused one).
void same(const std::string& what, Side& fused, const Tensor& a, Side& unfused, const Tensor& b) {
  const std::vector<uint8_t> x = fused.bytes(a), y = unfused.bytes(b);
  size_t diff = 0;
  for (size_t i = 0; i < x.size(); ++i) diff += x[i] != y[i];
  line(what + " fused == unfused", x.size() == y.size() && diff == 0,
       diff ? std::to_string(diff) + " of " + std::to_string(x.size()) + " bytes differ" : "");
}

// The FP8 rows the fused backend wrote for `reader` against launch_quantize_fp8_rows
// of the bf16 rows y [T, K] they were made from (codes and scales bit for bit),
// and the record naming y, T and reader.
void check_rows(const std::string& what, Side& side, const Fp8Rows& rows, const Tensor& y, const LinearWeight& reader,
                const QuantizedMatrix& m) {
  const int64_t T = y.dim(0), K = y.dim(1);
  line(what + " record", rows.rows == T && rows.x == y.data && rows.weight == reader.quant);
  Tensor codes = side.alloc(DType::kF8E4M3, {T, K}), scales = side.alloc(DType::kF32, {T});
  side.b.synchronize();
  cuda::launch_quantize_fp8_rows(y.data, static_cast<int>(T), static_cast<int>(K), m.act == ActQuant::kStaticTensor,
                                 m.input_scale, m.activation_scale_ub, codes.data, scales.as<float>(), nullptr);
  if (cudaDeviceSynchronize() != cudaSuccess) {
    line(what + " reference quantize", false, "CUDA error");
    return;
  }
  const std::vector<uint8_t> want_codes = side.bytes(codes), want_scales = side.bytes(scales);
  const std::vector<uint8_t> got_codes = side.bytes(rows.codes.rows(0, T)), got_scales = side.bytes(rows.scales.rows(0, T));
  size_t diff = 0;
  for (size_t i = 0; i < want_codes.size(); ++i) diff += want_codes[i] != got_codes[i];
  size_t sdiff = 0;
  for (size_t i = 0; i < want_scales.size(); i += 4) sdiff += std::memcmp(&want_scales[i], &got_scales[i], 4) != 0;
  size_t saturated = 0;  // codes at ±448: the static scale and the bound are exercised
  for (uint8_t c : got_codes) saturated += (c & 0x7F) == 0x7E;
  line(what + " == quantize_fp8_rows(bf16 rows)", diff == 0 && sdiff == 0,
       std::to_string(diff) + " codes, " + std::to_string(sdiff) + " scales differ; " + std::to_string(saturated) +
           " codes at 448");
}

// A layer's four W8A8 Linears of one shape and scheme, on one backend.
struct Weights {
  LinearWeight qkv, o, gu, down;
};
struct Matrices {
  QuantizedMatrix qkv, o, gu, down;
  Weights upload(Backend& b) const {
    auto up = [&](const QuantizedMatrix& m) {
      auto w = b.upload_quantized(m);
      if (!w.ok()) {
        std::fprintf(stderr, "fp8_act_check: %s\n", w.status().to_string().c_str());
        std::abort();
      }
      return *w;
    };
    return Weights{up(qkv), up(o), up(gu), up(down)};
  }
};

void run_case(Backend& fused_b, const Weights& fw, Backend& unfused_b, const Weights& uw, const Matrices& mats,
              const Shape& sh, const Scheme& sc, const int T) {
  const std::string tag = std::string("fp8_act ") + sh.name + " " + sc.name + " T" + std::to_string(T);
  std::printf("-- case %s\n", tag.c_str());
  std::fflush(stdout);
  const int64_t H = sh.H, I = sh.I, D = sh.head_dim, A = int64_t{sh.q_heads} * D;
  const int64_t W = int64_t{sh.q_heads + 2 * sh.kv_heads} * D;
  const QuantizedMatrix &mqkv = mats.qkv, &mgu = mats.gu, &mdown = mats.down;
  const bool gemma = sh.norm == NormKind::kTimesOnePlusWeight;
  std::vector<uint16_t> wn[5];  // input, mlp, next input, attn out, mlp out norms
  for (auto& w : wn) w = gemma ? rand_bf16(static_cast<size_t>(H), -0.5f, 0.5f) : rand_bf16(static_cast<size_t>(H), 0.5f, 1.5f);
  const std::vector<uint16_t> resid0 = rand_bf16(static_cast<size_t>(T * H), -2.0f, 2.0f);
  const std::vector<uint16_t> attn0 = rand_bf16(static_cast<size_t>(T * A), -1.0f, 1.0f);
  const std::vector<uint16_t> bias0 = rand_bf16(static_cast<size_t>(W), -0.5f, 0.5f);
  std::vector<float> inv_freq(static_cast<size_t>(D / 2));
  for (int64_t i = 0; i < D / 2; ++i) inv_freq[static_cast<size_t>(i)] = static_cast<float>(std::pow(10000.0, -2.0 * i / D));
  const int bs = 16, blocks = (sh.start + T + bs - 1) / bs;
  const StepMetadata meta = single_seq_step(sh.start, T, bs);

  struct Layer {
    Side s;
    LinearWeight qkv, o, gu, down;
    Tensor nw[5];
    RopeParams rope;
    Tensor bias;
    QkvParams p;
    KvLayer kv;
    Tensor residual, attn, normed, qkv1, qkv2, proj1, proj2, gate_up, act;
    Fp8Rows normed_fp8, act_fp8;
    explicit Layer(Backend& b) : s(b) {}
  };
  auto make = [&](Backend& b, const Weights& w) {
    auto L = std::make_unique<Layer>(b);
    L->qkv = w.qkv;
    L->o = w.o;
    L->gu = w.gu;
    L->down = w.down;
    for (int i = 0; i < 5; ++i) L->nw[i] = L->s.weight({H}, wn[i]);
    L->rope.head_dim = static_cast<int32_t>(D);
    L->rope.inv_freq = L->s.alloc(DType::kF32, {D / 2});
    b.copy_from_host(L->rope.inv_freq, inv_freq.data(), inv_freq.size() * 4);
    L->p.q_heads = sh.q_heads;
    L->p.kv_heads = sh.kv_heads;
    L->p.rope = &L->rope;
    if (sh.qkv_bias) {
      L->bias = L->s.bf16({W}, bias0);
      L->p.bias = &L->bias;
    }
    const DType kv_dtype = sh.kv_fp8 ? DType::kF8E4M3 : DType::kBF16;
    L->kv.k = L->s.alloc(kv_dtype, {blocks, bs, sh.kv_heads, D});
    L->kv.v = L->s.alloc(kv_dtype, {blocks, bs, sh.kv_heads, D});
    if (sh.kv_fp8) {
      L->kv.k_scale = 0.05f;
      L->kv.v_scale = 0.02f;
    }
    b.fill_zero(L->kv.k);
    b.fill_zero(L->kv.v);
    L->residual = L->s.bf16({T, H}, resid0);
    L->attn = L->s.bf16({T, A}, attn0);
    L->normed = L->s.alloc(DType::kBF16, {T, H});
    L->qkv1 = L->s.alloc(DType::kBF16, {T, W});
    L->qkv2 = L->s.alloc(DType::kBF16, {T, W});
    L->proj1 = L->s.alloc(DType::kBF16, {T, H});
    L->proj2 = L->s.alloc(DType::kBF16, {T, H});
    L->gate_up = L->s.alloc(DType::kBF16, {T, 2 * I});
    L->act = L->s.alloc(DType::kBF16, {T, I});
    // Capacity of a model's workspace (more rows than this step's), as Model::init allocates them.
    L->normed_fp8.codes = L->s.alloc(DType::kF8E4M3, {T + 7, H});
    L->normed_fp8.scales = L->s.alloc(DType::kF32, {T + 7});
    L->act_fp8.codes = L->s.alloc(DType::kF8E4M3, {T + 7, I});
    L->act_fp8.scales = L->s.alloc(DType::kF32, {T + 7});
    b.set_step_metadata(meta);
    return L;
  };
  auto F = make(fused_b, fw);
  auto U = make(unfused_b, uw);
  line(tag + " writes_fp8_rows", fused_b.writes_fp8_rows(F->qkv) && !unfused_b.writes_fp8_rows(U->qkv));
  const float eps = 1e-5f;
  auto norm = [&](Layer& L, int i) { return RmsNorm{&L.nw[i], eps, sh.norm}; };
  auto out_norm = [&](Layer& L, int i) { return sh.out_norms ? RmsNorm{&L.nw[i], eps, sh.norm} : RmsNorm{}; };

  // 1. Layer 0's qkv: the norm prologue inside qkv_rope_store (norm + FP8 rows into the backend's scratch).
  for (Layer* L : {F.get(), U.get()})
    L->s.b.qkv_rope_store(MatmulInput::rms_normed(L->residual, norm(*L, 0), L->normed), L->qkv, L->qkv1, L->p, L->kv);
  same(tag + " qkv (norm prologue) normed", F->s, F->normed, U->s, U->normed);
  same(tag + " qkv (norm prologue) qkv", F->s, F->qkv1, U->s, U->qkv1);
  same(tag + " qkv (norm prologue) k cache", F->s, F->kv.k, U->s, U->kv.k);

  // 2. o_proj + residual + the MLP norm, with normed's FP8 rows for gate_up.
  for (Layer* L : {F.get(), U.get()})
    L->s.b.matmul_add_rms_norm(L->attn, L->o, L->proj1, out_norm(*L, 3), L->residual, norm(*L, 1), L->normed,
                               Fp8Out{&L->normed_fp8, &L->gu});
  line(tag + " unfused writes no rows", U->normed_fp8.rows == 0);
  check_rows(tag + " norm fp8 (for gate_up)", F->s, F->normed_fp8, F->normed, F->gu, mgu);
  same(tag + " o_proj normed", F->s, F->normed, U->s, U->normed);
  same(tag + " o_proj residual", F->s, F->residual, U->s, U->residual);

  // 3. gate_up on those rows, the GLU with act's FP8 rows for down.
  for (Layer* L : {F.get(), U.get()})
    L->s.b.matmul_silu_mul(MatmulInput(L->normed).with_fp8(&L->normed_fp8), L->gu, sh.act, L->gate_up, L->act,
                           Fp8Out{&L->act_fp8, &L->down});
  check_rows(tag + " glu fp8 (for down)", F->s, F->act_fp8, F->act, F->down, mdown);
  same(tag + " gate_up (on fp8 rows)", F->s, F->gate_up, U->s, U->gate_up);
  same(tag + " act", F->s, F->act, U->s, U->act);

  // 4. down on act's rows + residual + the next input norm, with FP8 rows for the next qkv.
  for (Layer* L : {F.get(), U.get()})
    L->s.b.matmul_add_rms_norm(MatmulInput(L->act).with_fp8(&L->act_fp8), L->down, L->proj2, out_norm(*L, 4),
                               L->residual, norm(*L, 2), L->normed, Fp8Out{&L->normed_fp8, &L->qkv});
  check_rows(tag + " norm fp8 (for qkv)", F->s, F->normed_fp8, F->normed, F->qkv, mqkv);
  same(tag + " down (on fp8 rows) out", F->s, F->proj2, U->s, U->proj2);
  same(tag + " down normed", F->s, F->normed, U->s, U->normed);

  // 5. The next layer's qkv on normed's rows.
  for (Layer* L : {F.get(), U.get()})
    L->s.b.qkv_rope_store(MatmulInput(L->normed).with_fp8(&L->normed_fp8), L->qkv, L->qkv2, L->p, L->kv);
  same(tag + " qkv (on fp8 rows)", F->s, F->qkv2, U->s, U->qkv2);
  same(tag + " v cache", F->s, F->kv.v, U->s, U->kv.v);

  // 6. A record for another weight is not taken: with normed's rows (step 4's,
  // written for qkv) zeroed, gate_up on normed must quantize normed itself.
  F->s.b.fill_zero(F->normed_fp8.codes);
  for (Layer* L : {F.get(), U.get()})
    L->s.b.matmul_silu_mul(MatmulInput(L->normed).with_fp8(&L->normed_fp8), L->gu, sh.act, L->gate_up, L->act);
  same(tag + " gate_up (zeroed rows recorded for qkv)", F->s, F->gate_up, U->s, U->gate_up);
  // 7. ... while a record that names gate_up is taken (the zeroed rows change the
  // result): the checks above ran the fused path.
  F->normed_fp8.weight = F->gu.quant;
  F->s.b.matmul_silu_mul(MatmulInput(F->normed).with_fp8(&F->normed_fp8), F->gu, sh.act, F->gate_up, F->act);
  {
    const std::vector<uint8_t> x = F->s.bytes(F->gate_up), y = U->s.bytes(U->gate_up);
    line(tag + " gate_up reads the recorded rows (zeroed: differs)", x != y);
  }
}

// Logits [n, V] of a prefill of `ids` at every position, as bytes.
std::vector<uint8_t> prefill_logits(Model& model, const std::vector<int32_t>& ids) {
  const int n = static_cast<int>(ids.size());
  std::vector<int32_t> rows(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) rows[static_cast<size_t>(i)] = i;
  const StepMetadata m = single_seq_step(0, n, model.block_size());
  auto l = model.forward(m, ids, rows);
  if (!l.ok()) return {};
  std::vector<uint8_t> host(l->bytes());
  model.backend().copy_to_host(host.data(), *l, host.size());
  return host;
}

// Every model of fixtures/models.json (tests/golden/quant) on both backends:
// prefill logits at 9, 40 and 200 tokens bit for bit equal (the FP8 W8A8 ones
// run the fused quantization at every Linear but o_proj; the others nothing new).
void check_models(Backend& fused, Backend& unfused, const std::string& fixtures) {
  std::ifstream f(fixtures + "/models.json");
  if (!f.good()) {
    line("fp8_act models: cannot read " + fixtures + "/models.json", false);
    return;
  }
  ModelOptions opt;
  opt.max_tokens_per_step = 256;
  opt.max_logit_rows = 256;
  opt.max_kv_tokens = 1024;
  for (const std::string& name : nlohmann::json::parse(f).get<std::vector<std::string>>()) {
    auto a = load_model(fixtures + "/" + name, fused, opt);
    auto b = load_model(fixtures + "/" + name, unfused, opt);
    if (!a.ok() || !b.ok()) {
      line("fp8_act model " + name + " loads", false, (a.ok() ? b : a).status().to_string());
      continue;
    }
    const int V = (*a)->config().vocab_size;
    for (int n : {9, 40, 200}) {
      std::vector<int32_t> ids(static_cast<size_t>(n));
      for (int32_t& id : ids) id = static_cast<int32_t>(g_rng() % static_cast<uint64_t>(V));
      const std::vector<uint8_t> x = prefill_logits(**a, ids), y = prefill_logits(**b, ids);
      line("fp8_act model " + name + " prefill " + std::to_string(n) + " logits fused == unfused",
           !x.empty() && x == y);
    }
  }
}

}  // namespace

int check_fp8_act_fusion(const CudaOptions& options, const std::string& fixtures) {
  g_fail = 0;
  CudaOptions on = options, off = options;
  on.fuse_fp8_act_quant = true;
  off.fuse_fp8_act_quant = false;
  // The W8A8 qkv's RoPE + KV-store epilogue too (the fused backend's qkv, k and v
  // caches against the GEMM followed by the rope kernel).
  on.fp8_qkv_rope_epilogue = true;
  off.fp8_qkv_rope_epilogue = false;
  auto fused = make_cuda_backend(on);
  auto unfused = make_cuda_backend(off);
  if (!fused || !unfused) return 1;
  for (const Shape& sh : kShapes)
    for (const Scheme& sc : kSchemes) {
      const int64_t H = sh.H, I = sh.I, A = int64_t{sh.q_heads} * sh.head_dim;
      const Matrices m{w8a8_matrix(sc, int64_t{sh.q_heads + 2 * sh.kv_heads} * sh.head_dim, H, "qkv"),
                       w8a8_matrix(sc, H, A, "o"), w8a8_matrix(sc, 2 * I, H, "gate_up"), w8a8_matrix(sc, H, I, "down")};
      const Weights fw = m.upload(*fused), uw = m.upload(*unfused);
      for (int T : {9, 64, 512}) {
        if (T < on.fp8_w8a8_min_tokens) continue;  // those rows run W8A16: nothing to fuse
        run_case(*fused, fw, *unfused, uw, m, sh, sc, T);
      }
    }
  if (!fixtures.empty()) check_models(*fused, *unfused, fixtures);
  return g_fail;
}

}  // namespace kr
