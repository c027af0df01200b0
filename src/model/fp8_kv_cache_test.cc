// The FP8 KV cache (ModelOptions::kv_cache_dtype) on the CPU reference: the
// block count it buys, `auto` following the checkpoint, the checkpoint's
// per-layer scales, and greedy tokens of the tiny Llama that stay those of the
// unquantized cache wherever the top two logits are well apart.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/backend.h"
#include "model/model.h"
#include "model/single_seq_step_for_test.h"

namespace kr {
namespace {

const std::string kTinyLlama = std::string(KR_SOURCE_DIR) + "/models/tiny-llama3";
// compressed-tensors FP8 with kv_cache_scheme and per-layer self_attn.k_scale / v_scale.
const std::string kStaticKv = std::string(KR_SOURCE_DIR) + "/tests/golden/quant/ct_fp8_tensor_static_kv";
constexpr size_t kBudget = size_t{8} << 20;

struct Loaded {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
};

Loaded load(const std::string& dir, KvCacheDType dtype) {
  Loaded l;
  l.backend = make_cpu_backend(1, kBudget);
  ModelOptions opt;
  opt.block_size = 16;
  opt.max_tokens_per_step = 64;
  opt.max_logit_rows = 64;
  opt.kv_cache_dtype = dtype;
  auto m = load_model(dir, *l.backend, opt);
  EXPECT_TRUE(m.ok()) << dir << ": " << m.status().to_string();
  if (m.ok()) l.model = std::move(m).value();
  return l;
}


// Logits [V] of the last of `ids`, fed from position `start`.
std::vector<float> last_logits(Model& model, const std::vector<int32_t>& ids, int32_t start) {
  const int32_t n = static_cast<int32_t>(ids.size());
  const std::vector<int32_t> rows = {n - 1};
  auto logits = model.forward(single_seq_step(start, n, model.block_size()), ids, rows);
  EXPECT_TRUE(logits.ok()) << logits.status().to_string();
  std::vector<float> host(static_cast<size_t>(model.config().vocab_size));
  if (logits.ok()) model.backend().copy_to_host(host.data(), *logits, host.size() * 4);
  return host;
}

TEST(Fp8KvCache, OneBytePerElementBuysTheBlocks) {
  Loaded wide = load(kTinyLlama, KvCacheDType::kBf16);
  Loaded fp8 = load(kTinyLlama, KvCacheDType::kFp8);
  ASSERT_TRUE(wide.model && fp8.model);
  EXPECT_EQ(wide.model->kv_cache_dtype(), KvCacheDType::kBf16);
  EXPECT_EQ(fp8.model->kv_cache_dtype(), KvCacheDType::kFp8);
  EXPECT_EQ(fp8.model->kv_layers()[0].k.dtype, DType::kF8E4M3);
  EXPECT_EQ(fp8.model->kv_layers()[0].v.dtype, DType::kF8E4M3);
  // The CPU's "bf16" cache is float32 (its activation dtype): 4 bytes an element
  // against 1, so 4 times the blocks here; on CUDA (bf16) twice.
  const size_t elem = dtype_size_bytes(wide.backend->activation_dtype());
  const int64_t w = wide.model->num_kv_blocks(), f = fp8.model->num_kv_blocks();
  EXPECT_GE(f, w * static_cast<int64_t>(elem));
  EXPECT_LT(f, (w + 1) * static_cast<int64_t>(elem));
  EXPECT_LE(fp8.model->kv_cache_bytes(), kBudget);
  EXPECT_EQ(fp8.model->kv_cache_bytes() / static_cast<size_t>(f) * elem,
            wide.model->kv_cache_bytes() / static_cast<size_t>(w));
  // No scales in this checkpoint: 1.0 (as vLLM).
  EXPECT_EQ(fp8.model->kv_layers()[0].k_scale, 1.0f);
  EXPECT_EQ(fp8.model->kv_layers()[0].v_scale, 1.0f);
  // auto: the checkpoint declares no FP8 KV cache.
  Loaded automatic = load(kTinyLlama, KvCacheDType::kAuto);
  ASSERT_TRUE(automatic.model);
  EXPECT_EQ(automatic.model->kv_cache_dtype(), KvCacheDType::kBf16);
  EXPECT_EQ(automatic.model->num_kv_blocks(), w);
}

// A checkpoint with kv_cache_scheme: auto picks FP8 and every layer gets its own scales.
TEST(Fp8KvCache, AutoFollowsTheCheckpointAndTakesItsScales) {
  Loaded m = load(kStaticKv, KvCacheDType::kAuto);
  ASSERT_TRUE(m.model);
  EXPECT_EQ(m.model->kv_cache_dtype(), KvCacheDType::kFp8);
  const auto& scales = m.model->weights().kv_scales;
  ASSERT_EQ(scales.size(), m.model->kv_layers().size());
  bool some_not_one = false;
  for (size_t l = 0; l < scales.size(); ++l) {
    EXPECT_EQ(m.model->kv_layers()[l].k_scale, scales[l].k_scale) << l;
    EXPECT_EQ(m.model->kv_layers()[l].v_scale, scales[l].v_scale) << l;
    some_not_one |= scales[l].k_scale != 1.0f || scales[l].v_scale != 1.0f;
  }
  EXPECT_TRUE(some_not_one) << "the fixture's scales should exercise the scaling";
  // bf16 on request: the scales are not applied.
  Loaded b = load(kStaticKv, KvCacheDType::kBf16);
  ASSERT_TRUE(b.model);
  EXPECT_EQ(b.model->kv_cache_dtype(), KvCacheDType::kBf16);
  EXPECT_EQ(b.model->kv_layers()[0].k_scale, 1.0f);
}

// Greedy decoding of the tiny Llama with each cache, fed the unquantized run's
// tokens (a prompt in one step, then one token a step over the cached prefix):
// the FP8 run's argmax is the same wherever the unquantized top two logits are
// apart by more than 2% of the logits' spread (flips were seen at 0.3%), and its
// logits stay within a tenth of the spread (0.03 and 0.07 seen).
void check_greedy_close(const std::string& dir) {
  Loaded a = load(dir, KvCacheDType::kBf16);
  Loaded b = load(dir, KvCacheDType::kFp8);
  ASSERT_TRUE(a.model && b.model);
  const int64_t V = a.model->config().vocab_size;
  std::vector<int32_t> ids(24);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 37 + 11) % V);
  int32_t start = 0;
  int checked = 0;
  double worst = 0.0, differs = 0.0;
  for (int step = 0; step < 16; ++step) {
    const std::vector<float> la = last_logits(*a.model, ids, start);
    const std::vector<float> lb = last_logits(*b.model, ids, start);
    std::vector<int32_t> order(static_cast<size_t>(V));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + 2, order.end(), [&](int32_t x, int32_t y) { return la[x] > la[y]; });
    const auto [mn, mx] = std::minmax_element(la.begin(), la.end());
    const double spread = *mx - *mn;
    double diff = 0.0;
    for (int64_t i = 0; i < V; ++i) diff = std::max(diff, static_cast<double>(std::fabs(la[i] - lb[i])));
    worst = std::max(worst, diff / spread);
    differs = std::max(differs, diff);
    const int32_t best_b = static_cast<int32_t>(std::max_element(lb.begin(), lb.end()) - lb.begin());
    if (la[order[0]] - la[order[1]] > 0.02 * spread) {
      EXPECT_EQ(best_b, order[0]) << "step " << step;
      ++checked;
    }
    start += static_cast<int32_t>(ids.size());
    ids = {order[0]};
  }
  EXPECT_GT(checked, 4) << "too few confident steps to compare";
  EXPECT_LT(worst, 0.1) << "FP8 KV logits moved by more than a tenth of their spread";
  EXPECT_GT(differs, 0.0) << "the FP8 cache left every logit unchanged: was it used?";
}

TEST(Fp8KvCache, GreedyTokensStayWhereTheMarginIsLarge) { check_greedy_close(kTinyLlama); }

TEST(Fp8KvCache, GreedyTokensStayWithTheCheckpointScales) { check_greedy_close(kStaticKv); }

}  // namespace
}  // namespace kr
