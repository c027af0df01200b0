// The default fused ops: each composes the unfused ops it stands for, in the
// order the model would call them, so a backend that fuses nothing (the CPU
// reference) still runs every model.
#include "backend/backend.h"

#include <cmath>
#include <vector>

#include "base/check.h"

namespace kr {
namespace {

// x' of a MatmulInput: x, or its norm written to `normed`.
const Tensor& input_rows(Backend& b, const MatmulInput& in) {
  if (!in.norm.present()) return *in.x;
  b.rms_norm(*in.x, in.norm, *in.normed);
  return *in.normed;
}

}  // namespace

void Backend::qkv_rope_store(const MatmulInput& in, const Tensor& w, Tensor& qkv, const QkvParams& p,
                             KvLayer& kv) {
  matmul(input_rows(*this, in), w, qkv);
  rope(qkv, p);
  store_kv(qkv, p.q_heads, p.kv_heads, p.head_dim(), kv);
}

void Backend::matmul_silu_mul(const MatmulInput& in, const Tensor& w, Activation f, Tensor& gate_up,
                              Tensor& act) {
  matmul(input_rows(*this, in), w, gate_up);
  silu_mul(gate_up, f, act);
}

void Backend::matmul_add_rms_norm(const Tensor& x, const Tensor& w, Tensor& out, const RmsNorm& out_norm,
                                  Tensor& residual, const RmsNorm& norm, Tensor& normed) {
  matmul(x, w, out);
  if (out_norm.present()) rms_norm(out, out_norm, out);
  add_rms_norm(residual, out, norm, normed);
}

void Backend::apply_token_mask(Tensor& logits, std::span<const int32_t> rows, const uint32_t* masks,
                               size_t words_per_row) {
  KR_CHECK(logits.dtype == DType::kF32 && logits.ndim == 2);
  const int64_t R = logits.dim(0), V = logits.dim(1);
  KR_CHECK(words_per_row * 32 >= static_cast<size_t>(V));
  std::vector<float> row(static_cast<size_t>(V));
  for (size_t m = 0; m < rows.size(); ++m) {
    KR_CHECK(rows[m] >= 0 && rows[m] < R);
    Tensor t = logits.rows(rows[m], 1);
    copy_to_host(row.data(), t, row.size() * sizeof(float));
    const uint32_t* bits = masks + m * words_per_row;
    for (int64_t i = 0; i < V; ++i) {
      float& x = row[static_cast<size_t>(i)];
      if (!std::isfinite(x)) x = INFINITY;
      else if (((bits[i >> 5] >> (i & 31)) & 1u) == 0) x = -INFINITY;
    }
    copy_from_host(t, row.data(), row.size() * sizeof(float));
  }
}

}  // namespace kr
