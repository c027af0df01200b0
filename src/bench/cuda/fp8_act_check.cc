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
#include <algorithm>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/cuda/cuda_flash_attention.h"
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

// A step of several sequences: sequence s has ctx[s] tokens in the cache after
// the step, the last fresh[s] of them new; blocks of 16 tokens from a shuffled
// pool, the table as wide as the longest context.
struct DecodeStep {
  const char* name;
  std::vector<int> ctx, fresh;
  bool kv_fp8;
};

StepMetadata multi_seq_step(const DecodeStep& d, int bs, int* num_blocks) {
  StepMetadata m;
  m.num_seqs = static_cast<int32_t>(d.ctx.size());
  m.block_size = bs;
  int width = 0, total = 0;
  for (int c : d.ctx) {
    width = std::max(width, (c + bs - 1) / bs);
    total += (c + bs - 1) / bs;
  }
  *num_blocks = total;
  std::vector<int32_t> pool(static_cast<size_t>(total));
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), g_rng);
  m.max_blocks_per_seq = width;
  m.query_start.push_back(0);
  size_t next = 0;
  for (int s = 0; s < m.num_seqs; ++s) {
    const int c = d.ctx[static_cast<size_t>(s)], f = d.fresh[static_cast<size_t>(s)], nb = (c + bs - 1) / bs;
    for (int b = 0; b < width; ++b) m.block_tables.push_back(b < nb ? pool[next + static_cast<size_t>(b)] : -1);
    for (int p = c - f; p < c; ++p) {
      m.positions.push_back(p);
      m.slot_mapping.push_back(pool[next + static_cast<size_t>(p / bs)] * bs + p % bs);
    }
    next += static_cast<size_t>(nb);
    m.context_lens.push_back(c);
    m.max_context_len = std::max(m.max_context_len, c);
    m.query_start.push_back(m.query_start.back() + f);
  }
  m.num_tokens = m.query_start.back();
  return m;
}

struct PathCount {
  int split = 0, no_split = 0, fallback = 0;
};

// CudaOptions::flash_decode_warps of the backends under test (the path labels only).
int g_decode_warps = 0;

// Attention of a step of several sequences writing o_proj's FP8 rows, then o_proj
// (+ residual + the MLP norm with normed's rows for gate_up) on those rows, on the
// llama-8b shape (32 q heads, 8 kv heads, D 128):
//  - the rows attention wrote == launch_quantize_fp8_rows of its bf16 output (the
//    unfused backend writes none), the bf16 output and o_proj's out / residual /
//    normed == the unfused backend's;
//  - decode-only steps also as a step graph, recorded then replayed: the same bytes;
//  - o_proj reads the rows attention recorded (zeroed: its output differs).
void run_decode_case(Backend& fused_b, const Weights& fw, Backend& unfused_b, const Weights& uw, const Matrices& mats,
                     const Shape& sh, const Scheme& sc, const DecodeStep& d, uint64_t graph_key, PathCount* paths) {
  const int bs = 16;
  int num_blocks = 0;
  const StepMetadata meta = multi_seq_step(d, bs, &num_blocks);
  const int T = meta.num_tokens;
  const bool decode_only = T == meta.num_seqs;
  const int64_t H = sh.H, D = sh.head_dim, A = int64_t{sh.q_heads} * D;
  const int64_t W = int64_t{sh.q_heads + 2 * sh.kv_heads} * D;
  // The decode kernel's split count for this step (CudaBackend: half of its 256 MiB attention scratch).
  const int splits = decode_only ? cuda::flash_decode_split(T, sh.kv_heads, static_cast<int>(D),
                                                            meta.max_blocks_per_seq * bs, size_t{128} << 20, d.kv_fp8,
                                                            g_decode_warps)
                                       .num_splits
                                 : 0;
  const std::string path = !decode_only ? "mixed step (quantize after attention)"
                           : splits > 1 ? "flash decode " + std::to_string(splits) + " splits"
                                        : "flash decode no split";
  if (!decode_only) ++paths->fallback;
  else if (splits > 1) ++paths->split;
  else ++paths->no_split;
  const std::string tag = std::string("fp8_act attn ") + d.name + " " + sc.name + " T" + std::to_string(T);
  std::printf("-- case %s: %s, kv %s, table width %d\n", tag.c_str(), path.c_str(), d.kv_fp8 ? "fp8" : "bf16",
              meta.max_blocks_per_seq);
  std::fflush(stdout);
  const std::vector<uint16_t> resid0 = rand_bf16(static_cast<size_t>(T * H), -2.0f, 2.0f);
  const std::vector<uint16_t> qkv0 = rand_bf16(static_cast<size_t>(T * W), -1.0f, 1.0f);
  std::vector<uint16_t> nw = rand_bf16(static_cast<size_t>(H), 0.5f, 1.5f);
  const size_t kv_elems = static_cast<size_t>(num_blocks) * bs * sh.kv_heads * D;
  std::vector<uint16_t> k16, v16;
  std::vector<uint8_t> k8, v8;
  if (d.kv_fp8) {
    // e4m3 bytes of magnitude <= 15 (exponent field <= 10: never NaN).
    for (auto* v : {&k8, &v8}) {
      v->resize(kv_elems);
      for (uint8_t& b : *v) {
        const uint64_t r = g_rng();
        b = static_cast<uint8_t>((r & 0x80) | ((r >> 8) % 0x58));
      }
    }
  } else {
    k16 = rand_bf16(kv_elems, -1.0f, 1.0f);
    v16 = rand_bf16(kv_elems, -1.0f, 1.0f);
  }
  AttentionParams ap;
  ap.q_heads = sh.q_heads;
  ap.kv_heads = sh.kv_heads;
  ap.head_dim = static_cast<int>(D);
  ap.scale = 1.0f / std::sqrt(static_cast<float>(D));

  struct Layer {
    Side s;
    LinearWeight o, gu;
    Tensor nw;
    KvLayer kv;
    Tensor qkv, attn, residual, proj, normed;
    Fp8Rows attn_fp8, normed_fp8;
    explicit Layer(Backend& b) : s(b) {}
  };
  auto make = [&](Backend& b, const Weights& w) {
    auto L = std::make_unique<Layer>(b);
    L->o = w.o;
    L->gu = w.gu;
    L->nw = L->s.weight({H}, nw);
    const DType kv_dtype = d.kv_fp8 ? DType::kF8E4M3 : DType::kBF16;
    L->kv.k = L->s.alloc(kv_dtype, {num_blocks, bs, sh.kv_heads, D});
    L->kv.v = L->s.alloc(kv_dtype, {num_blocks, bs, sh.kv_heads, D});
    if (d.kv_fp8) {
      L->kv.k_scale = 0.05f;
      L->kv.v_scale = 0.02f;
      b.copy_from_host(L->kv.k, k8.data(), k8.size());
      b.copy_from_host(L->kv.v, v8.data(), v8.size());
    } else {
      b.copy_from_host(L->kv.k, k16.data(), k16.size() * 2);
      b.copy_from_host(L->kv.v, v16.data(), v16.size() * 2);
    }
    L->qkv = L->s.bf16({T, W}, qkv0);
    L->attn = L->s.alloc(DType::kBF16, {T, A});
    L->residual = L->s.bf16({T, H}, resid0);
    L->proj = L->s.alloc(DType::kBF16, {T, H});
    L->normed = L->s.alloc(DType::kBF16, {T, H});
    // Capacity of a model's workspace (more rows than this step's), as Model::init allocates them.
    L->attn_fp8.codes = L->s.alloc(DType::kF8E4M3, {T + 7, A});
    L->attn_fp8.scales = L->s.alloc(DType::kF32, {T + 7});
    L->normed_fp8.codes = L->s.alloc(DType::kF8E4M3, {T + 7, H});
    L->normed_fp8.scales = L->s.alloc(DType::kF32, {T + 7});
    return L;
  };
  auto F = make(fused_b, fw);
  auto U = make(unfused_b, uw);
  const RmsNorm no_norm{};
  auto step = [&](Layer& L) {
    L.s.b.attention(L.qkv, L.kv, ap, L.attn, Fp8Out{&L.attn_fp8, &L.o});
    L.s.b.matmul_add_rms_norm(MatmulInput(L.attn).with_fp8(&L.attn_fp8), L.o, L.proj, no_norm, L.residual,
                              RmsNorm{&L.nw, 1e-5f, NormKind::kTimesWeight}, L.normed,
                              Fp8Out{&L.normed_fp8, &L.gu});
  };
  for (Layer* L : {F.get(), U.get()}) {
    L->s.b.set_step_metadata(meta);
    step(*L);
  }
  line(tag + " writes_fp8_rows(o)", fused_b.writes_fp8_rows(F->o) && !unfused_b.writes_fp8_rows(U->o));
  line(tag + " unfused attention writes no rows", U->attn_fp8.rows == 0);
  check_rows(tag + " attention fp8 (for o_proj)", F->s, F->attn_fp8, F->attn, F->o, mats.o);
  same(tag + " attention out", F->s, F->attn, U->s, U->attn);
  same(tag + " o_proj (on attention's rows) out", F->s, F->proj, U->s, U->proj);
  same(tag + " o_proj residual", F->s, F->residual, U->s, U->residual);
  same(tag + " o_proj normed", F->s, F->normed, U->s, U->normed);

  Side& fs = F->s;
  if (decode_only) {
    // The step as a step graph on the fused backend: recorded (and run), then
    // replayed, each from the step's inputs, against the eager bytes above.
    const std::vector<uint8_t> want[] = {fs.bytes(F->attn), fs.bytes(F->attn_fp8.codes.rows(0, T)),
                                         fs.bytes(F->attn_fp8.scales.rows(0, T)), fs.bytes(F->proj),
                                         fs.bytes(F->residual), fs.bytes(F->normed)};
    for (int round = 0; round < 2; ++round) {
      fused_b.copy_from_host(F->residual, resid0.data(), resid0.size() * 2);
      for (Tensor* t : {&F->attn, &F->attn_fp8.codes, &F->attn_fp8.scales, &F->proj, &F->normed}) {
        const std::vector<uint8_t> nan(t->bytes(), 0xFF);  // an unwritten byte shows
        fused_b.copy_from_host(*t, nan.data(), nan.size());
      }
      fused_b.synchronize();
      if (!fused_b.begin_graph(graph_key)) {
        line(tag + " graph: begin_graph", false);
        break;
      }
      const bool replay = fused_b.replaying_graph();
      fused_b.set_step_metadata(meta);
      if (!replay) step(*F);
      fused_b.end_graph();
      fused_b.synchronize();
      const std::vector<uint8_t> got[] = {fs.bytes(F->attn), fs.bytes(F->attn_fp8.codes.rows(0, T)),
                                          fs.bytes(F->attn_fp8.scales.rows(0, T)), fs.bytes(F->proj),
                                          fs.bytes(F->residual), fs.bytes(F->normed)};
      const char* names[] = {"attn", "fp8 codes", "fp8 scales", "o_proj out", "residual", "normed"};
      std::string bad;
      for (int i = 0; i < 6; ++i)
        if (got[i] != want[i]) bad += std::string(bad.empty() ? "" : ", ") + names[i];
      line(tag + (round == 0 ? " graph record" : " graph replay") + " == eager",
           bad.empty() && replay == (round == 1), bad.empty() ? "" : "differ: " + bad);
    }
  }

  // o_proj takes the rows attention recorded: with them zeroed its output differs.
  fused_b.fill_zero(F->attn_fp8.codes);
  fused_b.copy_from_host(F->residual, resid0.data(), resid0.size() * 2);
  fused_b.matmul_add_rms_norm(MatmulInput(F->attn).with_fp8(&F->attn_fp8), F->o, F->proj, no_norm, F->residual,
                              RmsNorm{&F->nw, 1e-5f, NormKind::kTimesWeight}, F->normed);
  line(tag + " o_proj reads the recorded rows (zeroed: differs)", fs.bytes(F->proj) != U->s.bytes(U->proj));
}

// The steps of run_decode_case: contexts from 1 to a few thousand keys (the widest
// table takes splits), short ones without splits, an FP8 cache for both, and a
// mixed step (a sequence with several new tokens: the prefill kernel, then a
// quantize kernel).
std::vector<DecodeStep> decode_steps() {
  auto ctxs = [](int n, int lo, int hi, int longest) {
    std::uniform_int_distribution<int> u(lo, hi);
    std::vector<int> v(static_cast<size_t>(n));
    for (int& c : v) c = u(g_rng);
    v[static_cast<size_t>(n) / 2] = longest;
    v[0] = 1;
    return v;
  };
  std::vector<DecodeStep> out;
  const std::vector<int> long16 = ctxs(16, 1, 3000, 4000), short64 = ctxs(64, 1, 60, 64);
  out.push_back({"split b16", long16, std::vector<int>(16, 1), false});
  out.push_back({"split b16 kv-fp8", long16, std::vector<int>(16, 1), true});
  out.push_back({"no-split b64", short64, std::vector<int>(64, 1), false});
  out.push_back({"no-split b64 kv-fp8", short64, std::vector<int>(64, 1), true});
  std::vector<int> fresh(12, 1);
  fresh[3] = 9;
  out.push_back({"mixed b12", ctxs(12, 9, 700, 900), fresh, false});
  return out;
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
  g_decode_warps = options.flash_decode_warps;
  g_fail = 0;
  CudaOptions on = options, off = options;
  on.fuse_fp8_act_quant = true;
  off.fuse_fp8_act_quant = false;
  // The W8A8 qkv's RoPE + KV-store epilogue too (the fused backend's qkv, k and v
  // caches against the GEMM followed by the rope kernel).
  on.fp8_qkv_rope_epilogue = true;
  off.fp8_qkv_rope_epilogue = false;
  // Attention writing o_proj's FP8 rows (run_decode_case).
  on.fp8_attention_out = true;
  off.fp8_attention_out = false;
  auto fused = make_cuda_backend(on);
  auto unfused = make_cuda_backend(off);
  if (!fused || !unfused) return 1;
  const std::vector<DecodeStep> steps = decode_steps();
  PathCount paths;
  uint64_t graph_key = 0xF8A7700000ull;
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
      if (&sh == &kShapes[0])  // llama-8b: attention writing o_proj's rows
        for (const DecodeStep& d : steps) run_decode_case(*fused, fw, *unfused, uw, m, sh, sc, d, ++graph_key, &paths);
    }
  line("fp8_act attn paths covered: flash decode split " + std::to_string(paths.split) + ", no split " +
           std::to_string(paths.no_split) + ", quantize after attention " + std::to_string(paths.fallback),
       paths.split > 0 && paths.no_split > 0 && paths.fallback > 0);
  if (!fixtures.empty()) check_models(*fused, *unfused, fixtures);
  return g_fail;
}

}  // namespace kr
