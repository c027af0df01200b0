// out = x · wᵀ on the CPU: x [T, K] f32, w [N, K] bf16/f16/f32, out [T, N] f32.
//
// Work is split into tiles of kRowsPerTile weight rows × kTokensPerTile tokens.
// Each tile converts its weight rows to float32 once (into a per-task buffer)
// and reuses them for every token of the tile, so the conversion cost is
// 1/kTokensPerTile of the multiply-adds. For decode (T small) there is one
// token tile and the parallelism is over the output rows N; for prefill the
// tiles cover T × N.
#include <algorithm>
#include <vector>

#include "backend/cpu/cpu_backend.h"

namespace kr {
namespace {

constexpr int64_t kRowsPerTile = 16;
constexpr int64_t kTokensPerTile = 64;

// Sixteen independent partial sums let the compiler vectorize the loop
// without -ffast-math (no reassociation of a single accumulator needed).
inline float dot_f32(const float* a, const float* b, int64_t k_len) {
  float acc[16] = {0};
  int64_t k = 0;
  for (; k + 16 <= k_len; k += 16) {
    for (int j = 0; j < 16; ++j) acc[j] += a[k + j] * b[k + j];
  }
  float s = 0.0f;
  for (; k < k_len; ++k) s += a[k] * b[k];
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

}  // namespace

void CpuBackend::matmul(const Tensor& x, const Tensor& w, Tensor& out) {
  KR_CHECK(x.dtype == DType::kF32 && out.dtype == DType::kF32);
  const int64_t T = x.dim(0), K = x.dim(1), N = w.dim(0);
  KR_CHECK_MSG(w.dim(1) == K, "matmul: inner dimensions differ");
  KR_CHECK(out.dim(0) == T && out.dim(1) == N);
  if (T == 0 || N == 0) return;
  const int64_t n_tiles = (N + kRowsPerTile - 1) / kRowsPerTile;
  const int64_t t_tiles = (T + kTokensPerTile - 1) / kTokensPerTile;
  const float* xs = x.as<float>();
  float* os = out.as<float>();
  pool_.parallel_for(n_tiles * t_tiles, 1, [&](int64_t b, int64_t e) {
    std::vector<float> wbuf(static_cast<size_t>(kRowsPerTile * K));  // [rows, K] f32
    int64_t cached_n_tile = -1;
    for (int64_t tile = b; tile < e; ++tile) {
      // Token tiles are the inner index so consecutive tiles of a chunk reuse wbuf.
      const int64_t nt = tile / t_tiles, tt = tile % t_tiles;
      const int64_t n0 = nt * kRowsPerTile, n1 = std::min(N, n0 + kRowsPerTile);
      if (nt != cached_n_tile) {
        cpu_convert_to_f32(w.data, w.dtype, n0 * K, (n1 - n0) * K, wbuf.data());
        cached_n_tile = nt;
      }
      const int64_t t0 = tt * kTokensPerTile, t1 = std::min(T, t0 + kTokensPerTile);
      for (int64_t t = t0; t < t1; ++t) {
        const float* xr = xs + t * K;
        float* orow = os + t * N;
        for (int64_t n = n0; n < n1; ++n) orow[n] = dot_f32(xr, wbuf.data() + (n - n0) * K, K);
      }
    }
  });
}

}  // namespace kr
