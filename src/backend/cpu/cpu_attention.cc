// RoPE, KV-cache writes and paged causal attention on the CPU, driven by the
// StepMetadata of the current step (see backend.h for the layouts).
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_backend.h"

namespace kr {

void CpuBackend::rope(Tensor& qkv, const QkvParams& p) {
  // qkv [T, (Hq + 2 Hkv) * D]: + bias; per-head q/k norms; q and k heads rotated:
  // rotate_half pairs element i with i + D/2: x'[i] = x[i] cos - x[i + D/2] sin,
  // x'[i + D/2] = x[i + D/2] cos + x[i] sin.
  const RopeParams& rope = *p.rope;
  const int64_t T = qkv.dim(0), D = rope.head_dim, half = D / 2;
  const int64_t width = p.width();
  const int q_heads = p.q_heads, kv_heads = p.kv_heads;
  KR_CHECK(qkv.dim(1) == width && T == meta_.num_tokens);
  KR_CHECK(rope.inv_freq.dtype == DType::kF32 && rope.inv_freq.numel() == half);
  KR_CHECK(p.q_norm.present() == p.k_norm.present());
  KR_CHECK(!p.q_norm.present() || (p.q_norm.w->numel() == D && p.k_norm.w->numel() == D));
  KR_CHECK(p.bias == nullptr || p.bias->numel() == width);
  const float* inv_freq = rope.inv_freq.as<float>();
  pool_.parallel_for(T, 4, [&](int64_t b, int64_t e) {
    std::vector<float> cos_v(half), sin_v(half), bias;
    if (p.bias != nullptr) {
      bias.resize(width);
      cpu_convert_to_f32(p.bias->data, p.bias->dtype, 0, width, bias.data());
    }
    for (int64_t t = b; t < e; ++t) {
      const double pos = meta_.positions[t];
      for (int64_t i = 0; i < half; ++i) {
        // Angle in double (an exact product for any position), cos/sin used in float.
        const double angle = pos * static_cast<double>(inv_freq[i]);
        cos_v[i] = static_cast<float>(std::cos(angle));
        sin_v[i] = static_cast<float>(std::sin(angle));
      }
      float* row = qkv.as<float>() + t * width;
      for (int64_t i = 0; i < static_cast<int64_t>(bias.size()); ++i) row[i] += bias[i];
      for (int h = 0; h < q_heads + kv_heads; ++h) {  // q heads then k heads: contiguous
        float* x = row + h * D;
        if (p.q_norm.present()) cpu_rms_norm_row(x, h < q_heads ? p.q_norm : p.k_norm, D, x);
        for (int64_t i = 0; i < half; ++i) {
          const float a = x[i], c = x[i + half];
          x[i] = a * cos_v[i] - c * sin_v[i];
          x[i + half] = c * cos_v[i] + a * sin_v[i];
        }
      }
    }
  });
}

void CpuBackend::store_kv(const Tensor& qkv, int q_heads, int kv_heads, int head_dim, KvLayer& kv) {
  // qkv [T, (Hq + 2 Hkv) * D] → k, v [num_blocks, block_size, Hkv, D] at slot_mapping[t].
  const int64_t T = qkv.dim(0), D = head_dim;
  const int64_t width = (q_heads + 2 * kv_heads) * D, kv_width = kv_heads * D;
  KR_CHECK(qkv.dim(1) == width && T == meta_.num_tokens);
  // FP8 cache: e4m3(x / scale) bytes, as the CUDA store kernels write them.
  const int64_t num_slots = kv.k.dim(0) * kv.k.dim(1);
  for (int64_t t = 0; t < T; ++t) {
    const int32_t slot = meta_.slot_mapping[t];
    if (slot < 0) continue;  // padding token: nothing to store
    KR_CHECK_MSG(slot < num_slots, "store_kv: slot out of range");
    const float* row = qkv.as<float>() + t * width;
    const float* k = row + q_heads * D;
    const float* v = k + kv_width;
    if (kv.fp8()) {
      uint8_t* kd = kv.k.as<uint8_t>() + slot * kv_width;
      uint8_t* vd = kv.v.as<uint8_t>() + slot * kv_width;
      for (int64_t i = 0; i < kv_width; ++i) {
        kd[i] = kv_fp8_encode(k[i], kv.k_scale);
        vd[i] = kv_fp8_encode(v[i], kv.v_scale);
      }
    } else {
      std::copy(k, k + kv_width, kv.k.as<float>() + slot * kv_width);
      std::copy(v, v + kv_width, kv.v.as<float>() + slot * kv_width);
    }
  }
}

void CpuBackend::attention(const Tensor& qkv, const KvLayer& kv, const AttentionParams& p, Tensor& out,
                           Fp8Out out_fp8) {
  if (out_fp8.rows != nullptr) out_fp8.rows->clear();
  // For token t of sequence s at position pos and query head h (kv head h / group):
  //   out[t, h] = Σ_j softmax_j(cap(q·k_j · scale)) v_j over the cache positions j of
  //   s with lo <= j <= pos, lo = pos - sliding_window + 1 (or 0), cap = the soft-cap.
  const int q_heads = p.q_heads, kv_heads = p.kv_heads;
  const int64_t T = qkv.dim(0), D = p.head_dim;
  const int64_t width = (q_heads + 2 * kv_heads) * D, kv_width = kv_heads * D;
  KR_CHECK(q_heads > 0 && kv_heads > 0 && q_heads % kv_heads == 0 && T == meta_.num_tokens);
  KR_CHECK(qkv.dim(1) == width && out.dim(0) == T && out.dim(1) == q_heads * D);
  KR_CHECK(p.sliding_window >= 0 && p.softcap >= 0.0f);
  const int group = q_heads / kv_heads;
  const int32_t bs = meta_.block_size;
  // An FP8 cache attends over the dequantized values e4m3 * scale, in float32.
  const bool fp8 = kv.fp8();
  KR_CHECK(fp8 || kv.k.dtype == DType::kF32);
  const float* kc = fp8 ? nullptr : kv.k.as<float>();
  const float* vc = fp8 ? nullptr : kv.v.as<float>();
  auto dequant = [&](const Tensor& cache, float scale, int64_t off, float* dst) {
    const uint8_t* src = cache.as<uint8_t>() + off;
    for (int64_t d = 0; d < D; ++d) dst[d] = kv_fp8_decode(src[d], scale);
  };
  pool_.parallel_for(T * q_heads, 4, [&](int64_t b, int64_t e) {
    std::vector<float> scores;
    std::vector<const float*> vrows;
    std::vector<float> acc(D), kbuf(fp8 ? D : 0), vbuf;
    for (int64_t item = b; item < e; ++item) {
      const int64_t t = item / q_heads;
      const int h = static_cast<int>(item % q_heads);
      const int g = h / group;
      const int32_t s = token_seq_[t];
      KR_CHECK_MSG(s >= 0, "attention: token outside every sequence");
      const int64_t ctx = static_cast<int64_t>(meta_.positions[t]) + 1;
      KR_CHECK_MSG(ctx <= meta_.context_lens[s], "attention: position past context length");
      const int64_t lo = p.sliding_window > 0 ? std::max<int64_t>(0, ctx - p.sliding_window) : 0;
      const int64_t n = ctx - lo;
      const int32_t* table = meta_.block_tables.data() + static_cast<int64_t>(s) * meta_.max_blocks_per_seq;
      const float* q = qkv.as<float>() + t * width + h * D;
      scores.resize(n);
      vrows.resize(n);
      if (fp8) vbuf.resize(static_cast<size_t>(n * D));
      float max_score = -INFINITY;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t j = lo + i;
        const int64_t slot = static_cast<int64_t>(table[j / bs]) * bs + j % bs;
        const float* krow;
        if (fp8) {
          dequant(kv.k, kv.k_scale, slot * kv_width + g * D, kbuf.data());
          dequant(kv.v, kv.v_scale, slot * kv_width + g * D, vbuf.data() + i * D);
          krow = kbuf.data();
          vrows[i] = vbuf.data() + i * D;
        } else {
          krow = kc + slot * kv_width + g * D;
          vrows[i] = vc + slot * kv_width + g * D;
        }
        float dot = 0.0f;
        for (int64_t d = 0; d < D; ++d) dot += q[d] * krow[d];
        float sc = dot * p.scale;
        if (p.softcap > 0.0f) sc = p.softcap * std::tanh(sc / p.softcap);
        scores[i] = sc;
        max_score = std::max(max_score, sc);
      }
      double sum = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        scores[i] = std::exp(scores[i] - max_score);
        sum += scores[i];
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t i = 0; i < n; ++i) {
        const float pr = scores[i];
        const float* v = vrows[i];
        for (int64_t d = 0; d < D; ++d) acc[d] += pr * v[d];
      }
      const float inv = static_cast<float>(1.0 / sum);
      float* o = out.as<float>() + t * q_heads * D + h * D;
      for (int64_t d = 0; d < D; ++d) o[d] = acc[d] * inv;
    }
  });
}

}  // namespace kr
