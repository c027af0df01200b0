// The default fused ops (backend.cc) against the unfused ops they stand for,
// issued one by one on the CPU backend: same tensors written, same values.
#include "backend/backend.h"

#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_backend.h"

namespace kr {
namespace {

class FusedDefaults : public ::testing::Test {
 protected:
  Tensor make(std::initializer_list<int64_t> dims, float scale = 1.0f) {
    Tensor t = be_.alloc(DType::kF32, dims);
    std::uniform_real_distribution<float> u(-scale, scale);
    std::vector<float> v(t.numel());
    for (float& x : v) x = u(rng_);
    be_.copy_from_host(t, v.data(), t.bytes());
    return t;
  }
  // A new tensor of src's shape and values.
  Tensor copy(const Tensor& src) {
    Tensor t = be_.alloc(DType::kF32, {src.numel()});
    t.ndim = src.ndim;
    for (int i = 0; i < src.ndim; ++i) t.shape[i] = src.shape[i];
    std::vector<float> v(src.numel());
    be_.copy_to_host(v.data(), src, src.bytes());
    be_.copy_from_host(t, v.data(), t.bytes());
    return t;
  }
  std::vector<float> read(const Tensor& t) {
    std::vector<float> v(t.numel());
    be_.copy_to_host(v.data(), t, t.bytes());
    return v;
  }

  CpuBackend be_{2, 0};
  std::mt19937_64 rng_{7};
};

TEST_F(FusedDefaults, QkvRopeStoreIsNormMatmulRopeStore) {
  const int H = 16, Hq = 2, Hkv = 1, D = 8, W = (Hq + 2 * Hkv) * D, bs = 4;
  StepMetadata m;  // one sequence, 3 tokens cached, 2 new at positions 3 and 4
  m.num_tokens = 2;
  m.num_seqs = 1;
  m.block_size = bs;
  m.max_blocks_per_seq = 2;
  m.positions = {3, 4};
  m.slot_mapping = {1 * bs + 3, 0 * bs + 0};  // blocks {1, 0}
  m.query_start = {0, 2};
  m.context_lens = {5};
  m.block_tables = {1, 0};
  m.max_context_len = 5;
  be_.set_step_metadata(m);
  RopeParams rope;
  rope.head_dim = D;
  rope.inv_freq = make({D / 2});
  const Tensor x = make({2, H}), norm_w = make({H}), w = make({W, H}, 0.3f);
  const Tensor bias = make({W}), qn = make({D}), kn = make({D});
  for (bool norm : {false, true}) {
    KvLayer kv{make({2, bs, Hkv, D}), make({2, bs, Hkv, D})};
    KvLayer kv_ref{copy(kv.k), copy(kv.v)};
    Tensor qkv = make({2, W}), qkv_ref = make({2, W}), normed = make({2, H}), normed_ref = make({2, H});
    const RmsNorm n{&norm_w, 1e-5f, NormKind::kTimesOnePlusWeight};
    const MatmulInput in = norm ? MatmulInput::rms_normed(x, n, normed) : MatmulInput(x);
    // With the input norm, also the bias and q/k norms of QkvParams.
    const QkvParams p = norm ? QkvParams{Hq, Hkv, &rope, &bias, RmsNorm{&qn, 1e-6f}, RmsNorm{&kn, 1e-6f}}
                             : QkvParams{Hq, Hkv, &rope};
    be_.qkv_rope_store(in, w, qkv, p, kv);
    if (norm) be_.rms_norm(x, n, normed_ref);
    be_.matmul(norm ? normed_ref : x, w, qkv_ref);
    be_.rope(qkv_ref, p);
    be_.store_kv(qkv_ref, Hq, Hkv, D, kv_ref);
    EXPECT_EQ(read(qkv), read(qkv_ref)) << "norm " << norm;
    EXPECT_EQ(read(kv.k), read(kv_ref.k)) << "norm " << norm;
    EXPECT_EQ(read(kv.v), read(kv_ref.v)) << "norm " << norm;
    if (norm) {
      EXPECT_EQ(read(normed), read(normed_ref));
    }
  }
}

TEST_F(FusedDefaults, MatmulSiluMulAndMatmulAddRmsNorm) {
  const int T = 3, H = 16, I = 8;
  const Tensor x = make({T, H}), norm_w = make({H}), w_gu = make({2 * I, H}, 0.3f), w_down = make({H, I}, 0.3f);
  const RmsNorm n{&norm_w, 1e-5f};
  for (bool norm : {false, true}) {
    // With the norm: GELU-tanh (Gemma's GeGLU); without: SiLU.
    const Activation f = norm ? Activation::kGeluTanh : Activation::kSilu;
    Tensor gu = make({T, 2 * I}), act = make({T, I}), normed = make({T, H});
    Tensor gu_ref = make({T, 2 * I}), act_ref = make({T, I}), normed_ref = make({T, H});
    be_.matmul_silu_mul(norm ? MatmulInput::rms_normed(x, n, normed) : MatmulInput(x), w_gu, f, gu, act);
    if (norm) be_.rms_norm(x, n, normed_ref);
    be_.matmul(norm ? normed_ref : x, w_gu, gu_ref);
    be_.silu_mul(gu_ref, f, act_ref);
    EXPECT_EQ(read(gu), read(gu_ref)) << "norm " << norm;
    EXPECT_EQ(read(act), read(act_ref)) << "norm " << norm;
    if (norm) {
      EXPECT_EQ(read(normed), read(normed_ref));
    }
  }
  const Tensor out_w = make({H});
  for (bool out_norm : {false, true}) {
    // With the output norm: Gemma's post norm and (1 + w) norms.
    const RmsNorm on = out_norm ? RmsNorm{&out_w, 1e-6f, NormKind::kTimesOnePlusWeight} : RmsNorm{};
    const RmsNorm nn = out_norm ? RmsNorm{&norm_w, 1e-6f, NormKind::kTimesOnePlusWeight} : n;
    Tensor act = make({T, I}), residual = make({T, H}), residual_ref = copy(residual);
    Tensor out = make({T, H}), out_ref = make({T, H}), normed = make({T, H}), normed_ref = make({T, H});
    be_.matmul_add_rms_norm(act, w_down, out, on, residual, nn, normed);
    be_.matmul(act, w_down, out_ref);
    if (out_norm) be_.rms_norm(out_ref, on, out_ref);
    be_.add_rms_norm(residual_ref, out_ref, nn, normed_ref);
    EXPECT_EQ(read(out), read(out_ref)) << "out_norm " << out_norm;
    EXPECT_EQ(read(residual), read(residual_ref)) << "out_norm " << out_norm;
    EXPECT_EQ(read(normed), read(normed_ref)) << "out_norm " << out_norm;
  }
}

}  // namespace
}  // namespace kr
