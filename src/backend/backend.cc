// The default fused ops: each composes the unfused ops it stands for, in the
// order the model would call them, so a backend that fuses nothing (the CPU
// reference) still runs every model.
#include "backend/backend.h"

#include <cmath>
#include <new>
#include <string>
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

void Backend::qkv_rope_store(const MatmulInput& in, const LinearWeight& w, Tensor& qkv, const QkvParams& p,
                             KvLayer& kv) {
  matmul(input_rows(*this, in), w, qkv);
  rope(qkv, p);
  store_kv(qkv, p.q_heads, p.kv_heads, p.head_dim(), kv);
}

// The composed defaults write no FP8 rows (Fp8Rows): they clear the record, and
// their matmuls quantize their own activations where they do.
void Backend::matmul_silu_mul(const MatmulInput& in, const LinearWeight& w, Activation f, Tensor& gate_up,
                              Tensor& act, Fp8Out act_fp8) {
  if (act_fp8.rows != nullptr) act_fp8.rows->clear();
  matmul(input_rows(*this, in), w, gate_up);
  silu_mul(gate_up, f, act);
}

void Backend::matmul_add_rms_norm(const MatmulInput& in, const LinearWeight& w, Tensor& out, const RmsNorm& out_norm,
                                  Tensor& residual, const RmsNorm& norm, Tensor& normed, Fp8Out normed_fp8) {
  if (normed_fp8.rows != nullptr) normed_fp8.rows->clear();
  matmul(input_rows(*this, in), w, out);
  if (out_norm.present()) rms_norm(out, out_norm, out);
  add_rms_norm(residual, out, norm, normed);
}

void Backend::decode_stack(const DecodeStack& s) {
  const size_t L = s.layers.size();
  for (size_t l = 0; l < L; ++l) {
    const DecodeLayer& d = s.layers[l];
    const MatmulInput in = l == 0 ? MatmulInput::rms_normed(*s.residual, d.input_norm, *s.normed)
                                  : MatmulInput(*s.normed);
    qkv_rope_store(in, *d.qkv, *s.qkv, *d.qkv_params, *d.kv);
    attention(*s.qkv, *d.kv, *d.attn_params, *s.attn_out);
    matmul_add_rms_norm(MatmulInput(*s.attn_out), *d.o, *s.proj, RmsNorm{}, *s.residual, d.mlp_norm, *s.normed);
    matmul_silu_mul(MatmulInput(*s.normed), *d.gate_up, s.activation, *s.gate_up_out, *s.act);
    const RmsNorm& next = l + 1 < L ? s.layers[l + 1].input_norm : s.final_norm;
    matmul_add_rms_norm(MatmulInput(*s.act), *d.down, *s.proj, RmsNorm{}, *s.residual, next, *s.normed);
  }
}

void* Backend::alloc_host_memory(size_t bytes) {
  return ::operator new(bytes, std::align_val_t{64}, std::nothrow);
}

void Backend::free_host_memory(void* p, size_t bytes) {
  (void)bytes;
  ::operator delete(p, std::align_val_t{64});
}

uint64_t Backend::copy_kv_blocks(std::span<const KvLayer> layers, void* host, std::span<const KvBlockCopy> copies,
                                 bool to_host) {
  if (layers.empty()) return 0;
  const size_t block_bytes = layers[0].k.rows(0, 1).bytes();
  const size_t slot_bytes = 2 * layers.size() * block_bytes;
  for (const KvBlockCopy& c : copies) {
    char* slot = static_cast<char*>(host) + static_cast<size_t>(c.host_slot) * slot_bytes;
    for (size_t l = 0; l < layers.size(); ++l) {
      Tensor k = layers[l].k.rows(c.device_block, 1);
      Tensor v = layers[l].v.rows(c.device_block, 1);
      char* hk = slot + 2 * l * block_bytes;
      if (to_host) {
        copy_to_host(hk, k, block_bytes);
        copy_to_host(hk + block_bytes, v, block_bytes);
      } else {
        copy_from_host(k, hk, block_bytes);
        copy_from_host(v, hk + block_bytes, block_bytes);
      }
    }
  }
  if (!to_host) synchronize();
  return 0;
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

void Backend::read_argmax(int64_t ticket, int32_t* ids, float* logprobs) {
  (void)ids, (void)logprobs;
  KR_CHECK_MSG(false, ("read_argmax(" + std::to_string(ticket) + "): " + name() + " has no launch_argmax").c_str());
}

void Backend::feed_sampled_ids(Tensor& ids) {
  (void)ids;
  KR_CHECK_MSG(false, ("feed_sampled_ids: " + name() + " has no launch_argmax").c_str());
}

}  // namespace kr
