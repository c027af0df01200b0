// out = x · wᵀ on the CPU: x [T, K] f32, w [N, K] bf16/f16/f32, out [T, N] f32.
//
// Work is split into tiles of kRowsPerTile weight rows × kTokensPerTile tokens.
// Each tile converts its weight rows to float32 once, transposed to [K, 16]
// (a per-task buffer), and reuses them for every token of the tile, so the
// conversion costs 1/kTokensPerTile of the multiply-adds. The inner loop is an
// axpy over 16 output columns (x[t, k] broadcast × 16 weights): it vectorizes
// without a horizontal reduction, and four tokens at a time give the adds
// enough independent chains. For decode (T small) there is one token tile and
// the parallelism is over the output rows N; for prefill the tiles cover T × N.
#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/dtype_convert.h"

namespace kr {
namespace {

constexpr int64_t kRowsPerTile = 16;
constexpr int64_t kTokensPerTile = 64;

// Build-time baseline is plain x86-64; clone the kernel for AVX2 machines and
// let the loader pick (the binary also runs on the GPU hosts).
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define KR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define KR_CLONES
#endif

// out[t, 0..16) = Σ_k x[t, k] · wt[k, 0..16) for t in [0, count); wt is [K, 16].
KR_CLONES
void tile_kernel(const float* x, int64_t x_stride, int64_t count, const float* wt, int64_t K, float* acc_out) {
  int64_t t = 0;
  for (; t + 4 <= count; t += 4) {
    float acc[4][16] = {};
    const float* x0 = x + t * x_stride;
    for (int64_t k = 0; k < K; ++k) {
      const float* w = wt + k * 16;
      const float a0 = x0[k], a1 = x0[x_stride + k], a2 = x0[2 * x_stride + k], a3 = x0[3 * x_stride + k];
      for (int j = 0; j < 16; ++j) {
        acc[0][j] += a0 * w[j];
        acc[1][j] += a1 * w[j];
        acc[2][j] += a2 * w[j];
        acc[3][j] += a3 * w[j];
      }
    }
    std::memcpy(acc_out + t * 16, acc, sizeof acc);
  }
  for (; t < count; ++t) {
    float acc[2][16] = {};  // even / odd k: two independent chains
    const float* xr = x + t * x_stride;
    int64_t k = 0;
    for (; k + 2 <= K; k += 2) {
      for (int j = 0; j < 16; ++j) {
        acc[0][j] += xr[k] * wt[k * 16 + j];
        acc[1][j] += xr[k + 1] * wt[(k + 1) * 16 + j];
      }
    }
    for (; k < K; ++k)
      for (int j = 0; j < 16; ++j) acc[0][j] += xr[k] * wt[k * 16 + j];
    for (int j = 0; j < 16; ++j) acc_out[t * 16 + j] = acc[0][j] + acc[1][j];
  }
}

// Σ_k x[k] · w[k] with w in bf16, converted in registers (a shift): the decode
// path, where each weight row is used by only a few tokens.
KR_CLONES
float dot_bf16(const float* x, const uint16_t* w, int64_t K) {
  float acc[16] = {};
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    for (int j = 0; j < 16; ++j) {
      const uint32_t bits = static_cast<uint32_t>(w[k + j]) << 16;
      float wf;
      std::memcpy(&wf, &bits, 4);
      acc[j] += x[k + j] * wf;
    }
  }
  float s = 0.0f;
  for (; k < K; ++k) s += x[k] * cpu_load_as_f32(w, DType::kBF16, k);
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

KR_CLONES
float dot_f32(const float* x, const float* w, int64_t K) {
  float acc[16] = {};
  int64_t k = 0;
  for (; k + 16 <= K; k += 16)
    for (int j = 0; j < 16; ++j) acc[j] += x[k + j] * w[k + j];
  float s = 0.0f;
  for (; k < K; ++k) s += x[k] * w[k];
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

// Fewer tokens than this: one dot product per (token, row), no f32 copy of the weights.
constexpr int64_t kDirectMaxTokens = 4;

}  // namespace

void CpuBackend::matmul(const Tensor& x, const LinearWeight& weight, Tensor& out) {
  KR_CHECK_MSG(!weight.quantized(), "CpuBackend: a quantized weight of another backend");
  const Tensor& w = weight.dense;
  KR_CHECK(x.dtype == DType::kF32 && out.dtype == DType::kF32);
  const int64_t T = x.dim(0), K = x.dim(1), N = w.dim(0);
  KR_CHECK_MSG(w.dim(1) == K, "matmul: inner dimensions differ");
  KR_CHECK(out.dim(0) == T && out.dim(1) == N);
  if (T == 0 || N == 0) return;
  const float* xs = x.as<float>();
  std::vector<float> xq;  // x as the CUDA W8A8 path quantizes it (CpuOptions::emulate_fp8_w8a8)
  if (!w8a8_.empty() && T >= options_.fp8_w8a8_min_tokens) {
    const auto it = w8a8_.find(w.data);
    if (it != w8a8_.end()) {
      xq.resize(static_cast<size_t>(T * K));
      pool_.parallel_for(T, 4, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
          // The CUDA path quantizes bf16 activations: round the row to bf16 first.
          float* row = xq.data() + t * K;
          for (int64_t k = 0; k < K; ++k) row[k] = bf16_to_f32(f32_to_bf16(xs[t * K + k]));
          cpu_fp8_quantize_row(row, K, it->second, row);
        }
      });
      xs = xq.data();
    }
  }
  float* os = out.as<float>();
  if (T < kDirectMaxTokens && (w.dtype == DType::kBF16 || w.dtype == DType::kF32)) {
    pool_.parallel_for(N, 64, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) {
        for (int64_t t = 0; t < T; ++t) {
          os[t * N + n] = w.dtype == DType::kBF16 ? dot_bf16(xs + t * K, w.as<uint16_t>() + n * K, K)
                                                  : dot_f32(xs + t * K, w.as<float>() + n * K, K);
        }
      }
    });
    return;
  }
  const int64_t n_tiles = (N + kRowsPerTile - 1) / kRowsPerTile;
  const int64_t t_tiles = (T + kTokensPerTile - 1) / kTokensPerTile;
  pool_.parallel_for(n_tiles * t_tiles, 1, [&](int64_t b, int64_t e) {
    std::vector<float> row(static_cast<size_t>(K));
    std::vector<float> wt(static_cast<size_t>(K * kRowsPerTile));  // [K, 16] f32
    std::vector<float> acc(static_cast<size_t>(kTokensPerTile * kRowsPerTile));
    int64_t cached_n_tile = -1;
    for (int64_t tile = b; tile < e; ++tile) {
      // Token tiles are the inner index so consecutive tiles of a chunk reuse wt.
      const int64_t nt = tile / t_tiles, tt = tile % t_tiles;
      const int64_t n0 = nt * kRowsPerTile, rows = std::min(N, n0 + kRowsPerTile) - n0;
      if (nt != cached_n_tile) {
        if (rows < kRowsPerTile) std::fill(wt.begin(), wt.end(), 0.0f);
        for (int64_t r = 0; r < rows; ++r) {
          cpu_convert_to_f32(w.data, w.dtype, (n0 + r) * K, K, row.data());
          for (int64_t k = 0; k < K; ++k) wt[k * kRowsPerTile + r] = row[k];
        }
        cached_n_tile = nt;
      }
      const int64_t t0 = tt * kTokensPerTile, count = std::min(T, t0 + kTokensPerTile) - t0;
      tile_kernel(xs + t0 * K, K, count, wt.data(), K, acc.data());
      for (int64_t t = 0; t < count; ++t)
        std::memcpy(os + (t0 + t) * N + n0, acc.data() + t * kRowsPerTile, static_cast<size_t>(rows) * sizeof(float));
    }
  });
}

}  // namespace kr
