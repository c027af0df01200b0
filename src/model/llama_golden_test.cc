// The tiny Llama-3 fixture on the CPU backend against Hugging Face float64
// references (tests/golden/tiny-llama3.expected.json).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "model/model.h"
#include "model/single_seq_step_for_test.h"

namespace kr {
namespace {

using json = nlohmann::json;

const std::string kModelDir = std::string(KR_SOURCE_DIR) + "/models/tiny-llama3";

json load_golden() {
  std::ifstream in(std::string(KR_SOURCE_DIR) + "/tests/golden/tiny-llama3.expected.json");
  EXPECT_TRUE(in.good());
  return json::parse(in);
}


struct Fixture {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
};

Fixture load_tiny(int32_t max_tokens) {
  Fixture f;
  f.backend = make_cpu_backend(0, size_t{64} << 20);
  ModelOptions opt;
  opt.block_size = 16;
  opt.max_tokens_per_step = max_tokens;
  opt.max_logit_rows = max_tokens;
  auto m = load_model(kModelDir, *f.backend, opt);
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  if (m.ok()) f.model = std::move(m).value();
  return f;
}

// Runs `ids` from position `start`; `host` gets the logits of every fed token [n, V].
void run_rows(Model& model, const std::vector<int32_t>& ids, int32_t start, std::vector<float>* host) {
  const int32_t n = static_cast<int32_t>(ids.size());
  std::vector<int32_t> rows(n);
  std::iota(rows.begin(), rows.end(), 0);
  auto logits = model.forward(single_seq_step(start, n, model.block_size()), ids, rows);
  ASSERT_TRUE(logits.ok()) << logits.status().to_string();
  host->resize(static_cast<size_t>(n) * model.config().vocab_size);
  model.backend().copy_to_host(host->data(), *logits, host->size() * 4);
}

// argmax (lowest id on ties), in one pass.
int32_t argmax_of(const float* row, int64_t V) {
  int32_t best = 0;
  for (int64_t i = 1; i < V; ++i)
    if (row[i] > row[best]) best = static_cast<int32_t>(i);
  return best;
}

double logsumexp(const float* row, int64_t V) {
  const float mx = *std::max_element(row, row + V);
  double s = 0;
  for (int64_t i = 0; i < V; ++i) s += std::exp(static_cast<double>(row[i]) - mx);
  return mx + std::log(s);
}

TEST(LlamaGolden, LogitsArgmaxAndGreedy) {
  const json golden = load_golden();
  constexpr int32_t kChunk = 512;  // prefill chunk: bounds the [chunk, V] logits buffer
  Fixture f = load_tiny(kChunk);
  ASSERT_NE(f.model, nullptr);
  const int64_t V = f.model->config().vocab_size;
  ASSERT_EQ(golden["logits"].size(), 6u);
  for (const json& c : golden["logits"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    const auto pos_argmax = c["pos_argmax"].get<std::vector<int32_t>>();
    const auto pos_margin = c["pos_margin"].get<std::vector<double>>();
    const int32_t n = static_cast<int32_t>(ids.size());
    std::vector<float> last, logits;  // reused: [chunk, V] is large
    for (int32_t start = 0; start < n; start += kChunk) {
      const int32_t len = std::min(kChunk, n - start);
      std::vector<int32_t> chunk(ids.begin() + start, ids.begin() + start + len);
      run_rows(*f.model, chunk, start, &logits);
      for (int32_t r = 0; r < len; ++r) {
        const int32_t p = start + r;
        if (pos_margin[p] > 1e-3) {
          EXPECT_EQ(argmax_of(&logits[r * V], V), pos_argmax[p]) << "position " << p;
        }
      }
      if (start + len == n) last.assign(logits.end() - V, logits.end());
    }
    const auto top_ids = c["last_top_ids"].get<std::vector<int32_t>>();
    const auto top_logits = c["last_top_logits"].get<std::vector<double>>();
    ASSERT_EQ(top_ids.size(), 40u);
    for (size_t i = 0; i < top_ids.size(); ++i)
      EXPECT_NEAR(last[top_ids[i]], top_logits[i], 1e-4) << "top logit " << i << " id " << top_ids[i];
    EXPECT_NEAR(logsumexp(last.data(), V), c["last_logsumexp"].get<double>(), 1e-4);

    if (!c.contains("greedy_next_ids")) continue;
    // Greedy decode one token at a time through the KV cache; the reference
    // token is fed back so that a near-tie cannot derail the later steps.
    const auto next = c["greedy_next_ids"].get<std::vector<int32_t>>();
    const auto margins = c["greedy_margins"].get<std::vector<double>>();
    ASSERT_EQ(next.size(), 24u);
    std::vector<float> row = last;
    for (size_t k = 0; k < next.size(); ++k) {
      if (margins[k] > 1e-3) {
        EXPECT_EQ(argmax_of(row.data(), V), next[k]) << "greedy step " << k;
      }
      run_rows(*f.model, {next[k]}, n + static_cast<int32_t>(k), &row);
    }
  }
}

// One-token steps through Backend::decode_stack (CpuOptions::report_decode_stack_fused:
// the CPU's default composition, as a fusing backend would be called) give the same
// logits, bit for bit, as the model's own loop of ops: the model hands the op its
// layers' weights, norms, RoPE, attention parameters and KV caches, and the final
// norm, as the loop uses them.
TEST(LlamaGolden, DecodeStackMatchesTheLayerLoop) {
  ModelOptions opt;
  opt.block_size = 16;
  opt.max_tokens_per_step = 64;
  opt.max_logit_rows = 64;
  CpuOptions fused_options;
  fused_options.report_decode_stack_fused = true;
  CpuBackend plain(0, size_t{64} << 20), fused(0, size_t{64} << 20, fused_options);
  auto a = load_model(kModelDir, plain, opt);
  auto b = load_model(kModelDir, fused, opt);
  ASSERT_TRUE(a.ok() && b.ok());
  const std::vector<int32_t> prompt = {128000, 791, 4062, 14198, 39935, 35308, 927, 279, 16053, 5679};
  std::vector<float> la, lb;
  run_rows(**a, prompt, 0, &la);  // a prefill: the loop on both
  run_rows(**b, prompt, 0, &lb);
  EXPECT_EQ(fused.decode_stack_calls(), 0);
  const int64_t V = (*a)->config().vocab_size;
  int32_t next = argmax_of(&la[la.size() - V], V);
  for (int32_t k = 0; k < 20; ++k) {
    run_rows(**a, {next}, static_cast<int32_t>(prompt.size()) + k, &la);
    run_rows(**b, {next}, static_cast<int32_t>(prompt.size()) + k, &lb);
    ASSERT_EQ(la, lb) << "decode step " << k;
    next = argmax_of(la.data(), V);
  }
  EXPECT_EQ(fused.decode_stack_calls(), 20);
}

}  // namespace
}  // namespace kr
