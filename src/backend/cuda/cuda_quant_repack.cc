// GCC 12 reports a false -Wrestrict inside std::string's operator+ when it inlines
// "literal" + std::to_string(...) chains (GCC bug 105329); CI builds with -Werror.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include "backend/cuda/cuda_quant_repack.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "backend/dtype_convert.h"
#include "backend/float_codec.h"

namespace kr::cuda {
namespace {

int64_t round_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// fn(i) for i in [0, n) on up to 16 threads (large matrices take seconds on one).
template <typename F>
void parallel_for(int64_t n, F fn) {
  const int threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 16u));
  if (threads == 1 || n < 64) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t chunk = ceil_div(n, threads);
  for (int t = 0; t < threads; ++t) {
    const int64_t b = t * chunk, e = std::min(n, b + chunk);
    if (b < e) pool.emplace_back([b, e, &fn] {
      for (int64_t i = b; i < e; ++i) fn(i);
    });
  }
  for (auto& th : pool) th.join();
}

std::string err(const QuantizedMatrix& m, const std::string& what) {
  return "quantized matrix '" + m.name + "' (" + m.format + "): " + what;
}

// A 16-bit float of `v` in the meta type; *rounded set when it is not exact.
uint16_t meta16(float v, bool f16, bool* rounded) {
  const uint16_t h = f16 ? f32_to_f16(v) : f32_to_bf16(v);
  const float back = f16 ? f16_to_f32(h) : bf16_to_f32(h);
  if (back != v) *rounded = true;
  return h;
}

Status repack_int(const QuantizedMatrix& m, QRepacked* r) {
  r->code = m.bits == 4 ? QCode::kU4 : QCode::kU8;
  if (m.group_size == m.K) {
    r->group = r->Kp;  // one group per row
  } else if (m.group_size % q_chunk_cols(r->code) == 0) {
    r->group = m.group_size;
  } else {
    return InvalidArgument(err(m, "group size " + std::to_string(m.group_size) +
                                      " is not supported by the CUDA kernels (a multiple of 32 columns, or one group per row)"));
  }
  r->groups = ceil_div(r->Kp, r->group);
  r->steps = r->Kp / q_step_cols(r->code);
  r->meta_f16 = m.scale_dtype == DType::kF16;
  r->has_bias = m.zero_kind == ZeroKind::kFloatBias;
  r->perm = m.perm;
  const int64_t wpr = m.words_per_row();
  auto canonical = [&](int64_t n, int64_t w) -> uint32_t {  // canonical word w of row n (0 past the edges)
    return n < m.N && w < wpr ? m.qweight[static_cast<size_t>(n * wpr + w)] : 0u;
  };
  const int64_t tiles = r->Np / kQTileRows;
  r->codes.assign(static_cast<size_t>(tiles * r->steps * 32 * 4), 0u);
  parallel_for(tiles, [&](int64_t nt) {
    for (int64_t st = 0; st < r->steps; ++st)
      for (int lane = 0; lane < 32; ++lane) {
        const int g = lane / 4, t = lane % 4;
        uint32_t* v = r->codes.data() + q_word_index(nt, r->steps, st, lane) * 4;
        for (int upper = 0; upper < 2; ++upper) {
          const int64_t n = nt * kQTileRows + g + 8 * upper;
          if (r->code == QCode::kU4) {
            for (int half = 0; half < 2; ++half) {
              // Positions 0..7 of the slice: columns 32 c + 8 t + p, one canonical word.
              const int64_t col = 32 * (2 * st + half) + 8 * t;
              const uint32_t w = canonical(n, col / 8);
              uint32_t out = 0;
              for (int p = 0; p < 8; ++p) out |= ((w >> (4 * p)) & 0xFu) << (4 * u4_nibble(p));
              v[half * 2 + upper] = out;
            }
          } else {
            const int64_t col = 32 * st + 8 * t;  // two canonical words: positions 0..3, 4..7
            v[upper * 2] = canonical(n, col / 4);
            v[upper * 2 + 1] = canonical(n, col / 4 + 1);
          }
        }
      }
  });
  r->meta.assign(static_cast<size_t>(tiles * r->groups * 16), 0u);
  const int64_t mg = m.groups();
  const uint32_t mid = 1u << (m.bits - 1);
  bool rounded = false;
  for (int64_t nt = 0; nt < tiles; ++nt)
    for (int64_t gi = 0; gi < std::min(r->groups, mg); ++gi)
      for (int rr = 0; rr < 16; ++rr) {
        const int64_t n = nt * 16 + rr;
        if (n >= m.N) continue;
        const size_t i = static_cast<size_t>(n * mg + gi);
        const uint32_t s = meta16(m.scales[i], r->meta_f16, &rounded);
        uint32_t hi = mid;
        if (m.zero_kind == ZeroKind::kInteger) hi = m.zeros[i];
        if (m.zero_kind == ZeroKind::kFloatBias) hi = meta16(m.biases[i], r->meta_f16, &rounded);
        r->meta[static_cast<size_t>(q_meta_index(nt, r->groups, gi, rr))] = s | (hi << 16);
      }
  r->scales_rounded = rounded;
  const char* zk = m.zero_kind == ZeroKind::kSymmetric ? "symmetric" : m.zero_kind == ZeroKind::kInteger ? "zero points" : "biases";
  r->desc = m.format + " int" + std::to_string(m.bits) + " " +
            (m.group_size == m.K ? std::string("per-channel") : "g" + std::to_string(m.group_size)) + " " + zk +
            (m.perm.empty() ? "" : " act-order") + (rounded ? " (scales rounded to 16 bits)" : "");
  return Status::Ok();
}

Status repack_fp8(const QuantizedMatrix& m, QRepacked* r) {
  r->code = QCode::kFp8;
  if (m.scale_layout == ScaleLayout::kBlock) {
    if (m.block_k % q_chunk_cols(QCode::kFp8) != 0)
      return InvalidArgument(err(m, "FP8 block scales with block_k " + std::to_string(m.block_k) +
                                        " are not supported by the CUDA kernels (a multiple of 64 columns)"));
    r->group = m.block_k;
  } else {
    r->group = r->Kp;
  }
  r->groups = ceil_div(r->Kp, r->group);
  r->steps = r->Kp / q_step_cols(QCode::kFp8);
  r->fp8.assign(static_cast<size_t>(r->Np * r->Kp), 0);
  parallel_for(m.N, [&](int64_t n) {
    std::memcpy(r->fp8.data() + n * r->Kp, m.fp8.data() + n * m.K, static_cast<size_t>(m.K));
  });
  const int64_t tiles = r->Np / kQTileRows;
  r->meta.assign(static_cast<size_t>(tiles * r->groups * 16), 0u);
  auto scale_of = [&](int64_t n, int64_t gi) -> float {
    switch (m.scale_layout) {
      case ScaleLayout::kTensor: return m.scales[0];
      case ScaleLayout::kGroup: return m.scales[static_cast<size_t>(n)];
      case ScaleLayout::kBlock:
        return gi < m.scale_cols() ? m.scales[static_cast<size_t>((n / m.block_n) * m.scale_cols() + gi)] : 0.0f;
    }
    return 0.0f;
  };
  for (int64_t nt = 0; nt < tiles; ++nt)
    for (int64_t gi = 0; gi < r->groups; ++gi)
      for (int rr = 0; rr < 16; ++rr) {
        const int64_t n = nt * 16 + rr;
        if (n >= m.N) continue;
        const float s = scale_of(n, gi);
        uint32_t bits;
        std::memcpy(&bits, &s, 4);
        r->meta[static_cast<size_t>(q_meta_index(nt, r->groups, gi, rr))] = bits;
      }
  r->w8a8 = fp8_runs_w8a8(m);
  if (r->w8a8) {
    r->row_scale.resize(static_cast<size_t>(m.N));
    for (int64_t n = 0; n < m.N; ++n) r->row_scale[static_cast<size_t>(n)] = scale_of(n, 0);
    r->static_input = m.act == ActQuant::kStaticTensor;
    r->input_scale = m.input_scale;
    r->act_scale_ub = m.activation_scale_ub;
  }
  const char* layout = m.scale_layout == ScaleLayout::kTensor ? "per-tensor" : m.scale_layout == ScaleLayout::kGroup ? "per-channel" : "block";
  r->desc = m.format + " fp8 " + layout + " " +
            (r->w8a8 ? (r->static_input ? "w8a8 static" : "w8a8 dynamic per-token") : "w8a16 (" + std::string(act_quant_name(m.act)) + " activations)");
  return Status::Ok();
}

}  // namespace

StatusOr<QRepacked> repack_quantized(const QuantizedMatrix& m) {
  KR_RETURN_IF_ERROR(m.validate());
  if (m.K % 8 != 0)
    return InvalidArgument(err(m, "in_features " + std::to_string(m.K) + " is not a multiple of 8 (CUDA kernels)"));
  if (m.N > (int64_t{1} << 30) || m.K > (int64_t{1} << 30)) return InvalidArgument(err(m, "too large for the CUDA kernels"));
  QRepacked r;
  r.N = m.N;
  r.K = m.K;
  r.Np = round_up(m.N, kQRowAlign);
  r.Kp = round_up(m.K, kQColAlign);
  if (m.kind == QuantKind::kFp8) {
    KR_RETURN_IF_ERROR(repack_fp8(m, &r));
  } else {
    KR_RETURN_IF_ERROR(repack_int(m, &r));
  }
  return r;
}

uint32_t repacked_code(const QRepacked& r, int64_t n, int64_t j) {
  const QCodePos p = q_code_pos(r.code, r.steps, n, j);
  const uint32_t w = r.codes[static_cast<size_t>(p.vec * 4 + p.word)];
  return (w >> p.shift) & (r.code == QCode::kU4 ? 0xFu : 0xFFu);
}

}  // namespace kr::cuda
