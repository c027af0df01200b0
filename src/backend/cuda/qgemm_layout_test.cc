// The CUDA quantized-weight layout without a GPU: repack_quantized's words hold
// every code where q_code_pos says, and a host simulation of the kernels of
// cuda_qgemm.cu — each lane's A and B fragments built from the repacked words and
// the activations exactly as the kernel builds them (qgemm_layout.h), then the
// m16n8k16 product by the PTX ISA's fragment layout, the chunk fold with the
// meta scales — computes x · Wᵀ of the float32 reference dequantization.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cuda/cuda_quant_repack.h"
#include "backend/dtype_convert.h"
#include "backend/float_codec.h"

namespace kr::cuda {
namespace {

std::mt19937_64 rng(7);

float bf16_round(float v) { return bf16_to_f32(f32_to_bf16(v)); }

float meta16_to_f32(uint32_t bits, bool f16) {
  return f16 ? f16_to_f32(static_cast<uint16_t>(bits)) : bf16_to_f32(static_cast<uint16_t>(bits));
}

// A random integer matrix in the canonical form (quantized_matrix.h).
QuantizedMatrix random_int(int64_t N, int64_t K, int bits, int64_t G, ZeroKind zk, bool f16, bool perm) {
  QuantizedMatrix m;
  m.kind = QuantKind::kInt;
  m.format = "test";
  m.name = "w";
  m.N = N;
  m.K = K;
  m.bits = bits;
  m.group_size = G;
  m.zero_kind = zk;
  m.scale_dtype = f16 ? DType::kF16 : DType::kBF16;
  std::uniform_int_distribution<uint32_t> code(0, (1u << bits) - 1);
  m.qweight.assign(static_cast<size_t>(N * m.words_per_row()), 0u);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < K; ++j)
      m.qweight[static_cast<size_t>(n * m.words_per_row() + j / m.pack_factor())] |= code(rng) << (bits * (j % m.pack_factor()));
  std::uniform_real_distribution<float> u(0.5f, 2.0f);
  for (int64_t i = 0; i < N * m.groups(); ++i) {
    const float s = u(rng) * 0.01f * (zk == ZeroKind::kFloatBias && (i % 3 == 0) ? -1.0f : 1.0f);
    m.scales.push_back(f16 ? f16_to_f32(f32_to_f16(s)) : bf16_round(s));
    if (zk == ZeroKind::kInteger) m.zeros.push_back(static_cast<uint8_t>(code(rng)));
    if (zk == ZeroKind::kFloatBias) m.biases.push_back(f16 ? f16_to_f32(f32_to_f16(-s * 7.0f)) : bf16_round(-s * 7.0f));
  }
  if (perm) {
    for (int64_t j = 0; j < K; ++j) m.perm.push_back(static_cast<int32_t>(j));
    std::shuffle(m.perm.begin(), m.perm.end(), rng);
  }
  EXPECT_TRUE(m.validate().ok()) << m.validate().to_string();
  return m;
}

QuantizedMatrix random_fp8(int64_t N, int64_t K, ScaleLayout layout, int64_t bn, int64_t bk) {
  QuantizedMatrix m;
  m.kind = QuantKind::kFp8;
  m.format = "test";
  m.name = "w";
  m.N = N;
  m.K = K;
  m.bits = 8;
  m.group_size = K;
  m.scale_layout = layout;
  m.block_n = bn;
  m.block_k = bk;
  m.act = ActQuant::kDynamicToken;
  std::uniform_int_distribution<int> byte(0, 255);
  for (int64_t i = 0; i < N * K; ++i) {
    uint8_t c = static_cast<uint8_t>(byte(rng));
    if (fp8_e4m3_is_nan(c)) c = static_cast<uint8_t>(c - 1);
    m.fp8.push_back(c);
  }
  std::uniform_real_distribution<float> u(0.5f, 2.0f);
  for (int64_t i = 0; i < m.scale_rows() * m.scale_cols(); ++i) m.scales.push_back(u(rng) * 1e-3f);
  EXPECT_TRUE(m.validate().ok()) << m.validate().to_string();
  return m;
}

// y[t, n] = Σ_k W[n, k] x[t, k] in double, W = dequantize(m) (input-column order).
std::vector<double> reference(const QuantizedMatrix& m, const std::vector<float>& x, int T) {
  const std::vector<float> w = dequantize(m);
  std::vector<double> y(static_cast<size_t>(T * m.N), 0.0);
  for (int t = 0; t < T; ++t)
    for (int64_t n = 0; n < m.N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < m.K; ++k) s += static_cast<double>(w[n * m.K + k]) * x[t * m.K + k];
      y[t * m.N + n] = s;
    }
  return y;
}

// The kernels on the host. fold: the T <= 8 shape (exact codes per chunk, folded
// with the f32 scale); otherwise the T > 8 shape (bf16-rounded weights).
std::vector<double> simulate(const QRepacked& r, const std::vector<float>& x_in, int T, bool fold) {
  const int64_t N = r.N, K = r.K;
  // The backend gathers x into the canonical column order first (act-order).
  std::vector<float> x(x_in);
  if (!r.perm.empty())
    for (int t = 0; t < T; ++t)
      for (int64_t j = 0; j < K; ++j) x[t * K + j] = x_in[t * K + r.perm[j]];
  const QCode code = r.code;
  const int CK = q_chunk_cols(code);
  std::vector<double> y(static_cast<size_t>(T * N), 0.0);
  for (int64_t nt = 0; nt < r.Np / 16; ++nt) {
    double acc[16][8] = {};
    for (int64_t c = 0; c < r.Kp / CK; ++c) {
      const int64_t kc = c * CK, grp = kc / r.group;
      float s[16], b[16], z[16];
      for (int rr = 0; rr < 16; ++rr) {
        const uint32_t mw = r.meta[static_cast<size_t>(q_meta_index(nt, r.groups, grp, rr))];
        if (code == QCode::kFp8) {
          std::memcpy(&s[rr], &mw, 4);
          b[rr] = z[rr] = 0.0f;
        } else {
          s[rr] = meta16_to_f32(mw & 0xFFFFu, r.meta_f16);
          b[rr] = r.has_bias ? meta16_to_f32(mw >> 16, r.meta_f16) : 0.0f;
          z[rr] = r.has_bias ? 0.0f : static_cast<float>(mw >> 16);
        }
      }
      // The lane's exact value (q - z, q, or the FP8 value) -> what the kernel feeds the mma.
      auto finish = [&](float v, int row) -> float {
        if (fold) return v;
        if (code == QCode::kFp8) return bf16_round(v * s[row]);
        if (r.has_bias) return bf16_round(static_cast<float>(static_cast<double>(v) * bf16_round(s[row]) + bf16_round(b[row])));
        return bf16_round(v * bf16_round(s[row]));
      };
      double part[16][8] = {};
      for (int i = 0; i < CK / 16; ++i) {
        double A[16][16] = {}, B[16][8] = {};
        for (int lane = 0; lane < 32; ++lane) {
          const int g = lane / 4, t = lane % 4;
          // Values at slice positions 4i .. 4i+3 of rows g and g+8, decoded as the kernel does.
          float va[2][4];
          for (int up = 0; up < 2; ++up) {
            const int row = g + 8 * up;
            if (code == QCode::kU4) {
              const int64_t vec = q_word_index(nt, r.steps, c / 2, lane);
              const uint32_t w = r.codes[static_cast<size_t>(vec * 4 + (c % 2) * 2 + up)];
              for (int pj = 0; pj < 2; ++pj) {  // pairs 2i, 2i+1
                const uint32_t bits = u4_pair_plus128(w, 2 * i + pj);
                const float lo = bf16_to_f32(static_cast<uint16_t>(bits & 0xFFFFu)) - bf16_round(128.0f + z[row]);
                const float hi = bf16_to_f32(static_cast<uint16_t>(bits >> 16)) - bf16_round(128.0f + z[row]);
                va[up][2 * pj] = lo;
                va[up][2 * pj + 1] = hi;
              }
            } else if (code == QCode::kU8) {
              const int64_t vec = q_word_index(nt, r.steps, c, lane);
              const uint32_t w = r.codes[static_cast<size_t>(vec * 4 + 2 * up + i)];
              for (int e = 0; e < 4; ++e) va[up][e] = static_cast<float>((w >> (8 * e)) & 0xFFu) - z[row];
            } else {
              const uint8_t* p = r.fp8.data() + (nt * 16 + row) * r.Kp + kc + 16 * t + 4 * i;
              for (int e = 0; e < 4; ++e) va[up][e] = fp8_e4m3_to_f32(p[e]);
            }
            for (int e = 0; e < 4; ++e) va[up][e] = finish(va[up][e], row);
          }
          // PTX m16n8k16 A layout: a0,a1 (g, 2t..), a2,a3 (g+8, 2t..), a4,a5 (g, 2t+8..), a6,a7 (g+8, 2t+8..).
          A[g][2 * t] = va[0][0];
          A[g][2 * t + 1] = va[0][1];
          A[g + 8][2 * t] = va[1][0];
          A[g + 8][2 * t + 1] = va[1][1];
          A[g][2 * t + 8] = va[0][2];
          A[g][2 * t + 9] = va[0][3];
          A[g + 8][2 * t + 8] = va[1][2];
          A[g + 8][2 * t + 9] = va[1][3];
          // B: b0,b1 (k 2t.., n g), b2,b3 (k 2t+8.., n g) from the lane's x slice.
          const int tok = std::min(g, T - 1);
          const int64_t col = kc + t * (CK / 4) + 4 * i;
          auto xv = [&](int e) { return col + e < K ? bf16_round(x[tok * K + col + e]) : 0.0f; };
          B[2 * t][g] = xv(0);
          B[2 * t + 1][g] = xv(1);
          B[2 * t + 8][g] = xv(2);
          B[2 * t + 9][g] = xv(3);
        }
        for (int mr = 0; mr < 16; ++mr)
          for (int nc = 0; nc < 8; ++nc) {
            double d = 0;
            for (int k = 0; k < 16; ++k) d += A[mr][k] * B[k][nc];
            (fold ? part : acc)[mr][nc] += d;
          }
      }
      if (fold) {
        for (int mr = 0; mr < 16; ++mr)
          for (int nc = 0; nc < 8; ++nc) {
            double sx = 0;  // Σ x over the chunk for token nc (MLX biases)
            const int tok = std::min(nc, T - 1);
            for (int64_t k = kc; k < kc + CK && k < K; ++k) sx += bf16_round(x[tok * K + k]);
            acc[mr][nc] += static_cast<double>(s[mr]) * part[mr][nc] + static_cast<double>(b[mr]) * sx;
          }
      }
    }
    for (int mr = 0; mr < 16; ++mr)
      for (int t = 0; t < T; ++t)
        if (nt * 16 + mr < N) y[t * N + nt * 16 + mr] = acc[mr][t];
  }
  return y;
}

double max_rel_err(const std::vector<double>& ref, const std::vector<double>& got) {
  double err = 0, mag = 1e-30;
  for (size_t i = 0; i < ref.size(); ++i) {
    err = std::max(err, std::abs(ref[i] - got[i]));
    mag = std::max(mag, std::abs(ref[i]));
  }
  return err / mag;
}

std::vector<float> random_x(int T, int64_t K) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(T * K));
  for (float& v : x) v = bf16_round(d(rng));
  return x;
}

void check(const QuantizedMatrix& m, const char* what) {
  SCOPED_TRACE(what);
  auto r = repack_quantized(m);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  if (m.kind == QuantKind::kInt) {
    for (int64_t n = 0; n < m.N; ++n)
      for (int64_t j = 0; j < m.K; ++j) ASSERT_EQ(repacked_code(*r, n, j), m.code(n, j)) << n << "," << j;
  }
  for (int T : {1, 3, 8}) {
    const std::vector<float> x = random_x(T, m.K);
    const std::vector<double> want = reference(m, x, T);
    // The reference dequantization uses the exact scales; the meta keeps them in
    // 16 bits (exact here), so the fold is exact up to f64 summation order.
    EXPECT_LT(max_rel_err(want, simulate(*r, x, T, true)), 1e-6) << "T " << T << " (fold)";
    EXPECT_LT(max_rel_err(want, simulate(*r, x, T, false)), 2e-2) << "T " << T << " (bf16 weights)";
  }
}

TEST(QgemmLayout, Int4) {
  check(random_int(48, 256, 4, 32, ZeroKind::kInteger, true, false), "int4 g32 zero points f16");
  check(random_int(64, 384, 4, 128, ZeroKind::kSymmetric, true, false), "int4 g128 symmetric");
  check(random_int(40, 104, 4, 104, ZeroKind::kInteger, false, false), "int4 per-channel, K padded");
  check(random_int(32, 192, 4, 64, ZeroKind::kFloatBias, false, false), "int4 g64 MLX biases");
  check(random_int(32, 256, 4, 64, ZeroKind::kInteger, true, true), "int4 g64 act-order");
}

TEST(QgemmLayout, Int8) {
  check(random_int(48, 160, 8, 32, ZeroKind::kInteger, true, false), "int8 g32 zero points");
  check(random_int(24, 200, 8, 200, ZeroKind::kSymmetric, false, false), "int8 per-channel, K padded");
  check(random_int(32, 256, 8, 128, ZeroKind::kFloatBias, false, true), "int8 g128 biases act-order");
}

TEST(QgemmLayout, Fp8) {
  check(random_fp8(40, 136, ScaleLayout::kTensor, 0, 0), "fp8 per-tensor, K padded");
  check(random_fp8(64, 256, ScaleLayout::kGroup, 0, 0), "fp8 per-channel");
  check(random_fp8(48, 320, ScaleLayout::kBlock, 32, 128), "fp8 block 32x128");
}

// The batched kernel's x stage: a bijection that keeps each lane's 16-byte slice
// contiguous and aligned, and the 8 lanes of each quarter-warp of a B-operand read
// (rows 8j + g, g = 2q, 2q + 1; slices t = 0..3 of one chunk) in 8 distinct 16-byte
// bank groups (no bank conflict).
TEST(QgemmLayout, BatchedXStage) {
  for (QCode c : {QCode::kU4, QCode::kU8}) {
    const int step = q_step_cols(c), rows = 64;
    std::vector<int> seen(static_cast<size_t>(rows) * step, 0);
    for (int r = 0; r < rows; ++r)
      for (int col = 0; col < step; ++col) {
        const int i = q_xstage_index(c, r, col);
        ASSERT_GE(i, 0);
        ASSERT_LT(i, rows * step);
        ++seen[static_cast<size_t>(i)];
        if (col % 8 == 0) {
          EXPECT_EQ(i % 8, 0);
          for (int e = 1; e < 8; ++e) EXPECT_EQ(q_xstage_index(c, r, col + e), i + e);
        }
      }
    for (int v : seen) EXPECT_EQ(v, 1);
    for (int j = 0; j < rows / 8; ++j)
      for (int h = 0; h < step / 32; ++h)
        for (int q = 0; q < 4; ++q) {
          int groups = 0;  // bitmask of the 16-byte bank groups hit
          for (int lane = 8 * q; lane < 8 * q + 8; ++lane) {
            const int g = lane / 4, t = lane % 4;
            const int byte = 2 * q_xstage_index(c, 8 * j + g, 32 * h + 8 * t);
            groups |= 1 << ((byte / 16) % 8);
          }
          EXPECT_EQ(groups, 0xFF) << "code " << static_cast<int>(c) << " rows " << 8 * j << " chunk " << h
                                  << " quarter " << q;
        }
  }
}

TEST(QgemmLayout, Refusals) {
  EXPECT_FALSE(repack_quantized(random_int(16, 64, 4, 16, ZeroKind::kInteger, true, false)).ok());  // group 16
  EXPECT_FALSE(repack_quantized(random_fp8(16, 256, ScaleLayout::kBlock, 16, 32)).ok());          // block_k 32
  QuantizedMatrix odd = random_int(16, 36, 8, 36, ZeroKind::kSymmetric, true, false);              // K % 8
  const auto r = repack_quantized(odd);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().to_string().find("'w'"), std::string::npos) << r.status().to_string();
}

}  // namespace
}  // namespace kr::cuda
