// The default fused ops: each composes the unfused ops it stands for, in the
// order the model would call them, so a backend that fuses nothing (the CPU
// reference) still runs every model.
#include "backend/backend.h"

namespace kr {
namespace {

// x' of a MatmulInput: x, or rms_norm(x) * norm_w written to `normed`.
const Tensor& input_rows(Backend& b, const MatmulInput& in) {
  if (in.norm_w == nullptr) return *in.x;
  b.rms_norm(*in.x, *in.norm_w, in.eps, *in.normed);
  return *in.normed;
}

}  // namespace

void Backend::qkv_rope_store(const MatmulInput& in, const LinearWeight& w, Tensor& qkv, int q_heads, int kv_heads,
                             const RopeParams& rope, KvLayer& kv) {
  matmul(input_rows(*this, in), w, qkv);
  this->rope(qkv, q_heads, kv_heads, rope);
  store_kv(qkv, q_heads, kv_heads, rope.head_dim, kv);
}

void Backend::matmul_silu_mul(const MatmulInput& in, const LinearWeight& w, Tensor& gate_up, Tensor& act) {
  matmul(input_rows(*this, in), w, gate_up);
  silu_mul(gate_up, act);
}

void Backend::matmul_add_rms_norm(const Tensor& x, const LinearWeight& w, Tensor& out, Tensor& residual,
                                  const Tensor& norm_w, float eps, Tensor& normed) {
  matmul(x, w, out);
  add_rms_norm(residual, out, norm_w, eps, normed);
}

}  // namespace kr
