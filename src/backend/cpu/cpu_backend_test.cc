// Each CPU op against a direct double-precision computation of its formula.
#include "backend/cpu/cpu_backend.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "backend/dtype_convert.h"
#include "backend/float_codec.h"
#include "backend/quantized_matrix.h"

namespace kr {
namespace {

std::vector<float> random_vec(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

Tensor upload_f32(Backend& be, const std::vector<float>& v, std::initializer_list<int64_t> dims) {
  Tensor t = be.alloc(DType::kF32, dims);
  be.copy_from_host(t, v.data(), v.size() * 4);
  return t;
}

std::vector<float> download(Backend& be, const Tensor& t) {
  std::vector<float> v(t.numel());
  be.copy_to_host(v.data(), t, t.bytes());
  return v;
}

TEST(DTypeConvert, HalfAndBfloat) {
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_FLOAT_EQ(f16_to_f32(0x0001), 5.9604645e-8f);
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7c00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.5f)), 1.5f);
  EXPECT_EQ(f32_to_bf16(1.0f + 1.0f / 256), f32_to_bf16(1.0f));  // ties to even
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

class MatmulTest : public ::testing::TestWithParam<std::tuple<DType, int>> {};

TEST_P(MatmulTest, MatchesNaive) {
  const auto [wdt, T] = GetParam();
  CpuBackend be(3, 0);
  const int64_t K = 37, N = 45;  // not multiples of the tile sizes
  auto xv = random_vec(T * K, 1);
  auto wv = random_vec(N * K, 2);
  std::vector<uint16_t> w16(N * K);
  for (int64_t i = 0; i < N * K; ++i) {
    if (wdt == DType::kBF16) {
      w16[i] = f32_to_bf16(wv[i]);
      wv[i] = bf16_to_f32(w16[i]);
    } else if (wdt == DType::kF16) {
      // exact halves: k/1024 in [-1, 1]
      const int q = static_cast<int>(std::lround(wv[i] * 1024));
      wv[i] = q / 1024.0f;
      const float a = std::fabs(wv[i]);
      uint16_t h = 0;
      if (a != 0) {
        int e = 0;
        float m = std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
        h = static_cast<uint16_t>(((e - 1 + 15) << 10) | (static_cast<int>((m * 2 - 1) * 1024) & 0x3ff));
        if (e - 1 + 15 <= 0) h = static_cast<uint16_t>(a / 5.9604645e-8f);
      }
      if (wv[i] < 0) h |= 0x8000;
      w16[i] = h;
      ASSERT_EQ(f16_to_f32(h), wv[i]);
    }
  }
  Tensor x = upload_f32(be, xv, {T, K});
  Tensor host_w = wdt == DType::kF32 ? Tensor(wv.data(), DType::kF32, {N, K})
                                     : Tensor(w16.data(), wdt, {N, K});
  Tensor w = be.upload_weight(host_w);
  Tensor out = be.alloc(DType::kF32, {T, N});
  be.matmul(x, w, out);
  auto ov = download(be, out);
  for (int t = 0; t < T; ++t) {
    for (int64_t n = 0; n < N; ++n) {
      double ref = 0;
      for (int64_t k = 0; k < K; ++k) ref += static_cast<double>(xv[t * K + k]) * wv[n * K + k];
      ASSERT_NEAR(ov[t * N + n], ref, 1e-5) << "t=" << t << " n=" << n;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllDTypes, MatmulTest,
                         ::testing::Combine(::testing::Values(DType::kF32, DType::kBF16, DType::kF16),
                                            ::testing::Values(1, 5, 130)));

TEST(CpuBackend, RmsNormAndAddRmsNorm) {
  CpuBackend be(2, 0);
  const int64_t T = 3, H = 20;
  auto xv = random_vec(T * H, 3), rv = random_vec(T * H, 4), wv = random_vec(H, 5);
  Tensor x = upload_f32(be, xv, {T, H}), r = upload_f32(be, rv, {T, H}), w = upload_f32(be, wv, {H});
  Tensor out = be.alloc(DType::kF32, {T, H});
  be.rms_norm(x, RmsNorm{&w, 1e-5f}, out);
  auto o1 = download(be, out);
  be.add_rms_norm(r, x, RmsNorm{&w, 1e-5f}, out);
  auto o2 = download(be, out);
  auto r2 = download(be, r);
  for (int64_t t = 0; t < T; ++t) {
    double ss1 = 0, ss2 = 0;
    for (int64_t i = 0; i < H; ++i) {
      ss1 += double(xv[t * H + i]) * xv[t * H + i];
      const double s = double(xv[t * H + i]) + rv[t * H + i];
      ss2 += s * s;
    }
    for (int64_t i = 0; i < H; ++i) {
      const double s = double(xv[t * H + i]) + rv[t * H + i];
      EXPECT_NEAR(o1[t * H + i], xv[t * H + i] / std::sqrt(ss1 / H + 1e-5) * wv[i], 1e-5);
      EXPECT_NEAR(r2[t * H + i], s, 1e-6);
      EXPECT_NEAR(o2[t * H + i], s / std::sqrt(ss2 / H + 1e-5) * wv[i], 1e-5);
    }
  }
  // Gemma's form x̂ · (1 + w), in place.
  be.rms_norm(x, RmsNorm{&w, 1e-6f, NormKind::kTimesOnePlusWeight}, x);
  auto o3 = download(be, x);
  for (int64_t t = 0; t < T; ++t) {
    double ss = 0;
    for (int64_t i = 0; i < H; ++i) ss += double(xv[t * H + i]) * xv[t * H + i];
    for (int64_t i = 0; i < H; ++i)
      EXPECT_NEAR(o3[t * H + i], xv[t * H + i] / std::sqrt(ss / H + 1e-6) * (1.0 + wv[i]), 1e-5);
  }
}

TEST(CpuBackend, EmbeddingSiluMulGather) {
  CpuBackend be(2, 0);
  const int64_t V = 10, H = 6, I = 5;
  auto tv = random_vec(V * H, 6);
  std::vector<uint16_t> t16(V * H);
  for (size_t i = 0; i < tv.size(); ++i) t16[i] = f32_to_bf16(tv[i]);
  Tensor table = be.upload_weight(Tensor(t16.data(), DType::kBF16, {V, H}));
  std::vector<int32_t> idv = {3, 0, 9};
  Tensor ids = be.alloc(DType::kI32, {3});
  be.copy_from_host(ids, idv.data(), 12);
  Tensor emb = be.alloc(DType::kF32, {3, H});
  be.embedding(table, ids, 8.9375f, emb);  // Gemma's scale: bf16(sqrt(80))
  auto scaled = download(be, emb);
  be.embedding(table, ids, 1.0f, emb);
  auto ev = download(be, emb);
  for (int r = 0; r < 3; ++r)
    for (int64_t i = 0; i < H; ++i) {
      EXPECT_EQ(ev[r * H + i], bf16_to_f32(t16[idv[r] * H + i]));
      EXPECT_EQ(scaled[r * H + i], bf16_to_f32(t16[idv[r] * H + i]) * 8.9375f);
    }

  auto gu = random_vec(2 * 2 * I, 7, 4.0f);
  Tensor g = upload_f32(be, gu, {2, 2 * I});
  Tensor o = be.alloc(DType::kF32, {2, I});
  be.silu_mul(g, Activation::kSilu, o);
  auto ov = download(be, o);
  for (int t = 0; t < 2; ++t)
    for (int64_t i = 0; i < I; ++i) {
      const double a = gu[t * 2 * I + i], u = gu[t * 2 * I + I + i];
      EXPECT_NEAR(ov[t * I + i], a / (1 + std::exp(-a)) * u, 1e-5);
    }
  be.silu_mul(g, Activation::kGeluTanh, o);
  ov = download(be, o);
  for (int t = 0; t < 2; ++t)
    for (int64_t i = 0; i < I; ++i) {
      const double a = gu[t * 2 * I + i], u = gu[t * 2 * I + I + i];
      const double gelu = 0.5 * a * (1 + std::tanh(std::sqrt(2 / M_PI) * (a + 0.044715 * a * a * a)));
      EXPECT_NEAR(ov[t * I + i], gelu * u, 1e-5);
    }
  // Soft-cap: cap * tanh(x / cap).
  be.softcap(g, 3.0f);
  auto capped = download(be, g);
  for (size_t i = 0; i < gu.size(); ++i) EXPECT_NEAR(capped[i], 3.0 * std::tanh(gu[i] / 3.0), 1e-6);

  std::vector<int32_t> gi = {2, 2, 0};
  Tensor idx = be.alloc(DType::kI32, {3});
  be.copy_from_host(idx, gi.data(), 12);
  Tensor rows = be.alloc(DType::kF32, {3, H});
  be.gather_rows(emb, idx, rows);
  auto rv = download(be, rows);
  for (int r = 0; r < 3; ++r)
    for (int64_t i = 0; i < H; ++i) EXPECT_EQ(rv[r * H + i], ev[gi[r] * H + i]);
}

// Two sequences in one step over a paged cache with scattered blocks: rope +
// store_kv + attention against contiguous double-precision attention, plain and
// with a sliding window and a soft-cap.
TEST(CpuBackend, RopeStoreKvAttentionPaged) {
  CpuBackend be(3, 0);
  const int Hq = 4, Hkv = 2, D = 8, bs = 3, num_blocks = 8;
  const int width = (Hq + 2 * Hkv) * D;
  std::vector<float> inv_freq;
  for (int i = 0; i < D / 2; ++i) inv_freq.push_back(std::pow(10000.0f, -2.0f * i / D));
  RopeParams rp;
  rp.head_dim = D;
  rp.inv_freq = upload_f32(be, inv_freq, {D / 2});
  // seq 0: 5 tokens, blocks {6, 1}; seq 1: 4 tokens, blocks {0, 4}.
  StepMetadata m;
  m.num_tokens = 9;
  m.num_seqs = 2;
  m.block_size = bs;
  m.max_blocks_per_seq = 2;
  m.query_start = {0, 5, 9};
  m.context_lens = {5, 4};
  m.block_tables = {6, 1, 0, 4};
  m.max_context_len = 5;
  for (int s = 0; s < 2; ++s)
    for (int p = 0; p < m.context_lens[s]; ++p) {
      m.positions.push_back(p);
      m.slot_mapping.push_back(m.block_tables[s * 2 + p / bs] * bs + p % bs);
    }
  be.set_step_metadata(m);
  auto qv = random_vec(9 * width, 8, 2.0f);
  Tensor qkv = upload_f32(be, qv, {9, width});
  be.rope(qkv, QkvParams{Hq, Hkv, &rp});
  auto roped = download(be, qkv);
  // Rope check: head 0 of token 2 (position 2).
  for (int i = 0; i < D / 2; ++i) {
    const double ang = 2.0 * inv_freq[i];
    const double a = qv[2 * width + i], c = qv[2 * width + i + D / 2];
    EXPECT_NEAR(roped[2 * width + i], a * std::cos(ang) - c * std::sin(ang), 1e-5);
    EXPECT_NEAR(roped[2 * width + i + D / 2], c * std::cos(ang) + a * std::sin(ang), 1e-5);
  }
  // v is not rotated.
  for (int i = 0; i < Hkv * D; ++i) EXPECT_EQ(roped[2 * width + (Hq + Hkv) * D + i], qv[2 * width + (Hq + Hkv) * D + i]);

  KvLayer kv{be.alloc(DType::kF32, {num_blocks, bs, Hkv, D}), be.alloc(DType::kF32, {num_blocks, bs, Hkv, D})};
  be.fill_zero(kv.k);
  be.fill_zero(kv.v);
  be.store_kv(qkv, Hq, Hkv, D, kv);
  Tensor out = be.alloc(DType::kF32, {9, Hq * D});
  struct Variant {
    int window;
    float softcap;
  };
  for (const Variant var : {Variant{0, 0.0f}, Variant{2, 0.0f}, Variant{3, 1.5f}, Variant{0, 0.7f}}) {
    SCOPED_TRACE("window " + std::to_string(var.window) + " softcap " + std::to_string(var.softcap));
    AttentionParams ap{Hq, Hkv, D, 1.0f / std::sqrt(float(D)), var.window, var.softcap};
    be.attention(qkv, kv, ap, out);
    auto ov = download(be, out);
    for (int s = 0; s < 2; ++s) {
      const int base = m.query_start[s];
      for (int p = 0; p < m.context_lens[s]; ++p) {
        const int lo = var.window > 0 ? std::max(0, p - var.window + 1) : 0;
        for (int h = 0; h < Hq; ++h) {
          const int g = h / (Hq / Hkv);
          std::vector<double> sc(p + 1);
          double mx = -1e300, sum = 0;
          for (int j = lo; j <= p; ++j) {
            double d = 0;
            for (int i = 0; i < D; ++i)
              d += double(roped[(base + p) * width + h * D + i]) * roped[(base + j) * width + (Hq + g) * D + i];
            sc[j] = d / std::sqrt(double(D));
            if (var.softcap > 0) sc[j] = var.softcap * std::tanh(sc[j] / var.softcap);
            mx = std::max(mx, sc[j]);
          }
          for (int j = lo; j <= p; ++j) sum += (sc[j] = std::exp(sc[j] - mx));
          for (int i = 0; i < D; ++i) {
            double ref = 0;
            for (int j = lo; j <= p; ++j) ref += sc[j] / sum * roped[(base + j) * width + (Hq + Hkv + g) * D + i];
            EXPECT_NEAR(ov[(base + p) * Hq * D + h * D + i], ref, 1e-5) << "s=" << s << " p=" << p;
          }
        }
      }
    }
  }
}

// The FP8 KV cache: store_kv writes e4m3(x / scale) bytes (saturated at ±448),
// and attention over it equals attention over a float32 cache holding the
// dequantized values e4m3 * scale (both scales away from 1, so a scale left
// out or applied twice shows).
TEST(CpuBackend, Fp8KvCacheStoresE4m3AndAttendsOverDequantized) {
  CpuBackend be(2, 0);
  const int Hq = 4, Hkv = 2, D = 8, bs = 4, num_blocks = 4;
  const int width = (Hq + 2 * Hkv) * D, T = 6;
  StepMetadata m;
  m.num_tokens = T;
  m.num_seqs = 1;
  m.block_size = bs;
  m.max_blocks_per_seq = 2;
  m.query_start = {0, T};
  m.context_lens = {T};
  m.block_tables = {3, 1};
  m.max_context_len = T;
  for (int p = 0; p < T; ++p) {
    m.positions.push_back(p);
    m.slot_mapping.push_back(m.block_tables[p / bs] * bs + p % bs);
  }
  be.set_step_metadata(m);
  auto qv = random_vec(T * width, 21, 3.0f);
  qv[0 * width + Hq * D + 1] = 1000.0f;  // a key past 448 * k_scale: saturates
  qv[1 * width + (Hq + Hkv) * D + 2] = -5000.0f;  // a value past -448 * v_scale
  Tensor qkv = upload_f32(be, qv, {T, width});
  const float k_scale = 0.75f, v_scale = 2.5f;
  KvLayer kv{be.alloc(DType::kF8E4M3, {num_blocks, bs, Hkv, D}), be.alloc(DType::kF8E4M3, {num_blocks, bs, Hkv, D}),
             k_scale, v_scale};
  be.fill_zero(kv.k);
  be.fill_zero(kv.v);
  be.store_kv(qkv, Hq, Hkv, D, kv);
  // The reference: a float32 cache of the dequantized bytes.
  KvLayer ref{be.alloc(DType::kF32, {num_blocks, bs, Hkv, D}), be.alloc(DType::kF32, {num_blocks, bs, Hkv, D})};
  be.fill_zero(ref.k);
  be.fill_zero(ref.v);
  const uint8_t* kb = kv.k.as<uint8_t>();
  const uint8_t* vb = kv.v.as<uint8_t>();
  for (int t = 0; t < T; ++t) {
    const int slot = m.slot_mapping[t];
    for (int i = 0; i < Hkv * D; ++i) {
      const float k = qv[t * width + Hq * D + i], v = qv[t * width + (Hq + Hkv) * D + i];
      ASSERT_EQ(kb[slot * Hkv * D + i], f32_to_fp8_e4m3(k / k_scale)) << t << " " << i;
      ASSERT_EQ(vb[slot * Hkv * D + i], f32_to_fp8_e4m3(v / v_scale)) << t << " " << i;
      ref.k.as<float>()[slot * Hkv * D + i] = fp8_e4m3_to_f32(kb[slot * Hkv * D + i]) * k_scale;
      ref.v.as<float>()[slot * Hkv * D + i] = fp8_e4m3_to_f32(vb[slot * Hkv * D + i]) * v_scale;
    }
  }
  EXPECT_EQ(kb[m.slot_mapping[0] * Hkv * D + 1], 0x7E);  // +448
  EXPECT_EQ(vb[m.slot_mapping[1] * Hkv * D + 2], 0xFE);  // -448
  Tensor out = be.alloc(DType::kF32, {T, Hq * D}), out_ref = be.alloc(DType::kF32, {T, Hq * D});
  for (const float softcap : {0.0f, 2.0f}) {
    AttentionParams ap{Hq, Hkv, D, 1.0f / std::sqrt(float(D)), 0, softcap};
    be.attention(qkv, kv, ap, out);
    be.attention(qkv, ref, ap, out_ref);
    const auto ov = download(be, out), rv = download(be, out_ref);
    for (size_t i = 0; i < ov.size(); ++i) ASSERT_EQ(ov[i], rv[i]) << i;
  }
}

// rope() with Qwen2's bias and per-head q/k norms of both forms: bias on the whole
// row, then each q/k head normalised with its [D] weight, then rotated; v gets
// the bias only.
TEST(CpuBackend, RopeWithBiasAndQkNorms) {
  CpuBackend be(2, 0);
  const int Hq = 2, Hkv = 1, D = 8, width = (Hq + 2 * Hkv) * D;
  std::vector<float> inv_freq;
  for (int i = 0; i < D / 2; ++i) inv_freq.push_back(std::pow(10000.0f, -2.0f * i / D));
  RopeParams rp;
  rp.head_dim = D;
  rp.inv_freq = upload_f32(be, inv_freq, {D / 2});
  StepMetadata m;
  m.num_tokens = 2;
  m.num_seqs = 1;
  m.block_size = 4;
  m.max_blocks_per_seq = 1;
  m.query_start = {0, 2};
  m.context_lens = {7};
  m.block_tables = {0};
  m.max_context_len = 7;
  m.positions = {5, 6};
  m.slot_mapping = {-1, -1};
  be.set_step_metadata(m);
  const auto xv = random_vec(2 * width, 21, 2.0f), bv = random_vec(width, 22), qw = random_vec(D, 23),
             kw = random_vec(D, 24);
  Tensor bias = upload_f32(be, bv, {width}), qn = upload_f32(be, qw, {D}), kn = upload_f32(be, kw, {D});
  for (NormKind kind : {NormKind::kTimesWeight, NormKind::kTimesOnePlusWeight}) {
    Tensor qkv = upload_f32(be, xv, {2, width});
    QkvParams p{Hq, Hkv, &rp, &bias, RmsNorm{&qn, 1e-6f, kind}, RmsNorm{&kn, 1e-6f, kind}};
    be.rope(qkv, p);
    const auto got = download(be, qkv);
    for (int t = 0; t < 2; ++t) {
      std::vector<double> row(width);
      for (int i = 0; i < width; ++i) row[i] = double(xv[t * width + i]) + bv[i];
      for (int h = 0; h < Hq + Hkv; ++h) {
        const std::vector<float>& w = h < Hq ? qw : kw;
        double ss = 0;
        for (int i = 0; i < D; ++i) ss += row[h * D + i] * row[h * D + i];
        const double inv = 1.0 / std::sqrt(ss / D + 1e-6);
        std::vector<double> n(D);
        for (int i = 0; i < D; ++i)
          n[i] = row[h * D + i] * inv * (kind == NormKind::kTimesOnePlusWeight ? 1.0 + w[i] : w[i]);
        for (int i = 0; i < D / 2; ++i) {
          const double ang = m.positions[t] * double(inv_freq[i]);
          EXPECT_NEAR(got[t * width + h * D + i], n[i] * std::cos(ang) - n[i + D / 2] * std::sin(ang), 1e-5);
          EXPECT_NEAR(got[t * width + h * D + i + D / 2], n[i + D / 2] * std::cos(ang) + n[i] * std::sin(ang), 1e-5);
        }
      }
      for (int i = (Hq + Hkv) * D; i < width; ++i) EXPECT_NEAR(got[t * width + i], row[i], 1e-6);
    }
  }
}

// The CUDA W8A8 path's activation quantization (quantize_fp8_rows_kernel), by hand:
// e4m3 has 3 mantissa bits (steps of 1/8 in [1, 2)), subnormals in steps of 2^-9.
TEST(CpuFp8ActQuant, DynamicPerRowRoundsToNearestEven) {
  const Fp8ActQuant dyn;  // dynamic per row, no cap
  // amax 448: scale exactly 1.
  const std::vector<float> x = {448.0f, 1.0625f, 1.1875f, -1.1875f, 0x1p-10f, 0x1.8p-9f, 1.2f, 0.0f};
  EXPECT_EQ(cpu_fp8_act_scale(x.data(), 8, dyn), 1.0f);
  std::vector<float> q(8);
  cpu_fp8_quantize_row(x.data(), 8, dyn, q.data());
  EXPECT_EQ(q[0], 448.0f);
  EXPECT_EQ(q[1], 1.0f);       // tie between 1 and 1.125: to the even mantissa 0
  EXPECT_EQ(q[2], 1.25f);      // tie between 1.125 and 1.25: to the even mantissa 2
  EXPECT_EQ(q[3], -1.25f);
  EXPECT_EQ(q[4], 0.0f);       // 2^-10 = half the smallest subnormal 2^-9: tie to 0
  EXPECT_EQ(q[5], 0x1p-8f);    // 1.5 * 2^-9: tie to 2 * 2^-9
  EXPECT_EQ(q[6], 1.25f);      // 1.2: nearest of 1.125 and 1.25
  EXPECT_EQ(q[7], 0.0f);
}

TEST(CpuFp8ActQuant, CapSaturationAndSmallestScale) {
  // fbgemm's activation_scale_ub: amax 448 capped at 224, scale 0.5; 448 / 0.5 = 896
  // saturates to 448 (then times 0.5).
  Fp8ActQuant capped;
  capped.ub = 224.0f;
  const std::vector<float> x = {448.0f, -300.0f, 3.3f};
  EXPECT_EQ(cpu_fp8_act_scale(x.data(), 3, capped), 0.5f);
  std::vector<float> q(3);
  cpu_fp8_quantize_row(x.data(), 3, capped, q.data());
  EXPECT_EQ(q[0], 224.0f);
  EXPECT_EQ(q[1], -224.0f);
  EXPECT_EQ(q[2], 3.25f);  // 6.6 -> 6.5 (1.625 * 4)
  // A row of tiny values: the scale floor 1 / (448 * 512).
  const Fp8ActQuant dyn;
  const float floor_scale = 1.0f / (448.0f * 512.0f);
  const std::vector<float> t = {1e-7f, -3e-9f};
  EXPECT_EQ(cpu_fp8_act_scale(t.data(), 2, dyn), floor_scale);
  cpu_fp8_quantize_row(t.data(), 2, dyn, q.data());
  // 1e-7 / s = 0.0229 = 1.468 * 2^-6 -> 1.5 * 2^-6; 3e-9 / s = 6.9e-4 < 2^-10 -> -0.
  EXPECT_FLOAT_EQ(q[0], 0x1.8p-6f * floor_scale);
  EXPECT_EQ(q[1], 0.0f);
  EXPECT_TRUE(std::signbit(q[1]));
}

TEST(CpuFp8ActQuant, StaticScale) {
  Fp8ActQuant st;
  st.static_input = true;
  st.input_scale = 0.5f;
  st.ub = 1.0f;  // ignored: the scale is static
  const std::vector<float> x = {3.3f, -500.0f, 0.3f, 0.0390625f};
  EXPECT_EQ(cpu_fp8_act_scale(x.data(), 4, st), 0.5f);
  std::vector<float> q(4);
  cpu_fp8_quantize_row(x.data(), 4, st, q.data());
  EXPECT_EQ(q[0], 3.25f);     // 6.6 -> 6.5
  EXPECT_EQ(q[1], -224.0f);   // -1000 saturates to -448
  EXPECT_EQ(q[2], 0.3125f);   // 0.6 = 1.2 * 2^-1 -> 1.25 * 2^-1
  EXPECT_EQ(q[3], 0.0390625f);  // 0.078125 = 1.25 * 2^-4: exact
  // A scale that is no power of two: x / s must be one correctly rounded division.
  // 0x1.e00002p-2 / 0.3f = 1.5625 exactly, a tie between 1.5 and 1.625 (to 1.5);
  // x * (1 / s) would give 1.5625 + 1 ulp, hence 1.625.
  st.input_scale = 0.3f;
  const float tie = 0x1.e00002p-2f;
  cpu_fp8_quantize_row(&tie, 1, st, q.data());
  EXPECT_EQ(q[0], 1.5f * 0.3f);
}

// An FP8 Linear with a static input scale: the emulating backend quantizes x from
// fp8_w8a8_min_tokens rows on; below, and on a default backend, x stays float32.
TEST(CpuFp8ActQuant, MatmulEmulatesFromThreshold) {
  QuantizedMatrix m;
  m.kind = QuantKind::kFp8;
  m.format = "compressed-tensors";
  m.name = "test";
  // [8, 16]: row 0 = [1, 1, 1, 0...], row 1 = [1, 0, -1, 0...], the rest 0
  // (N % 8 and K % 16: a shape the FP8 GEMM takes).
  m.N = 8;
  m.K = 16;
  m.bits = 8;
  m.group_size = 16;
  m.fp8.assign(8 * 16, 0x00);
  m.fp8[0] = m.fp8[1] = m.fp8[2] = 0x38;
  m.fp8[16] = 0x38;
  m.fp8[18] = 0xB8;
  m.scale_layout = ScaleLayout::kTensor;
  m.scales = {1.0f};
  m.act = ActQuant::kStaticTensor;
  m.input_scale = 0.5f;
  ASSERT_TRUE(fp8_runs_w8a8(m));
  {
    QuantizedMatrix odd = m;  // N % 8 != 0: the GPU runs it W8A16, so the CPU does not emulate
    odd.N = 4;
    odd.fp8.resize(4 * 16);
    EXPECT_FALSE(fp8_runs_w8a8(odd));
    QuantizedMatrix narrow = m;  // K % 16 != 0: W8A16 as well
    narrow.K = 8;
    narrow.group_size = 8;
    narrow.fp8.resize(8 * 8);
    EXPECT_FALSE(fp8_runs_w8a8(narrow));
  }
  CpuOptions o;
  o.emulate_fp8_w8a8 = true;
  o.fp8_w8a8_min_tokens = 3;
  CpuBackend emu(1, 1 << 20, o), plain(1, 1 << 20);
  for (int T : {2, 3, 5}) {
    std::vector<float> xv;
    for (int t = 0; t < T; ++t) {
      xv.insert(xv.end(), {3.37f, 0.3f, 1.0f});
      xv.resize(xv.size() + 13, 0.0f);
    }
    for (CpuBackend* be : {&emu, &plain}) {
      auto w = be->upload_quantized(m);
      ASSERT_TRUE(w.ok());
      Tensor x = upload_f32(*be, xv, {T, 16});
      Tensor out = be->alloc(DType::kF32, {T, 8});
      be->matmul(x, *w, out);
      const std::vector<float> got = download(*be, out);
      const bool quantized = be == &emu && T >= 3;
      // x quantized through bf16, as the CUDA path's activations: 3.37 -> bf16
      // 3.375 -> 6.75 / 0.5, a tie, to even 7 -> 3.5 (straight from float32: 6.74
      // -> 6.5 -> 3.25); {3.5, 0.3125, 1}; else {3.37, 0.3, 1}.
      const float want0 = quantized ? 3.5f + 0.3125f + 1.0f : 3.37f + 0.3f + 1.0f;
      const float want1 = quantized ? 3.5f - 1.0f : 3.37f - 1.0f;
      for (int t = 0; t < T; ++t) {
        EXPECT_FLOAT_EQ(got[t * 8], want0) << "T " << T << (be == &emu ? " emulating" : " plain");
        EXPECT_FLOAT_EQ(got[t * 8 + 1], want1) << "T " << T << (be == &emu ? " emulating" : " plain");
      }
    }
  }
  EXPECT_EQ(emu.w8a8_weights(), 3u);
  EXPECT_EQ(plain.w8a8_weights(), 0u);
  // Dynamic activations, per token or per tensor (computed per token, as vLLM
  // does), run W8A8 too; per-token-group ones and block-scaled weights do not.
  for (ActQuant a : {ActQuant::kDynamicToken, ActQuant::kDynamicTensor}) {
    QuantizedMatrix d = m;
    d.act = a;
    EXPECT_TRUE(fp8_runs_w8a8(d)) << act_quant_name(a);
    ASSERT_TRUE(emu.upload_quantized(d).ok());
  }
  EXPECT_EQ(emu.w8a8_weights(), 5u);
  {
    QuantizedMatrix g = m;
    g.act = ActQuant::kDynamicGroup;
    EXPECT_FALSE(fp8_runs_w8a8(g));
  }
  // Weight-only FP8 (no activation quantization): never emulated.
  m.act = ActQuant::kNone;
  EXPECT_FALSE(fp8_runs_w8a8(m));
  ASSERT_TRUE(emu.upload_quantized(m).ok());
  EXPECT_EQ(emu.w8a8_weights(), 5u);
}

}  // namespace
}  // namespace kr
