// The default fused ops: each composes the unfused ops it stands for, in the
// order the model would call them, so a backend that fuses nothing (the CPU
// reference) still runs every model.
#include "backend/backend.h"

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

}  // namespace kr
