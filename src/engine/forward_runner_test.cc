// ForwardRunner on the tiny fixture: all six golden prompts at once in one batch,
// with 4-token KV blocks handed out in a shuffled order and prompts prefilled
// in chunks of 7 tokens next to other sequences' decode tokens. The sampled
// logprobs and greedy tokens must match the Hugging Face references.
#include "engine/forward_runner.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_backend.h"
#include "sampling/host_sampling_backend_for_test.h"

namespace kr {
namespace {

using json = nlohmann::json;

const std::string kModelDir = std::string(KR_SOURCE_DIR) + "/models/tiny-llama3";

std::unique_ptr<ForwardRunner> make_tiny_runner(int32_t block_size) {
  ModelOptions opt;
  opt.block_size = block_size;
  opt.max_tokens_per_step = 256;
  opt.max_logit_rows = 16;
  auto r = make_forward_runner(kModelDir, make_cpu_backend(0, size_t{32} << 20), opt);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(r).value() : nullptr;
}

struct Seq {
  std::string name;
  std::vector<int32_t> prompt;
  std::vector<int32_t> greedy;        // reference continuation (may be empty)
  std::vector<double> greedy_margins;
  std::vector<int32_t> top_ids;       // reference top-40 at the last prompt position
  std::vector<double> top_logprobs;
  std::vector<int32_t> blocks;
  std::vector<int32_t> fed;           // tokens in the KV cache so far
  std::vector<int32_t> chunk;         // this step's tokens
  std::vector<int32_t> output;
  size_t decoded = 0;                 // greedy steps checked
  bool done = false;
};

TEST(ForwardRunner, BatchedChunkedPagedMatchesGolden) {
  constexpr int32_t kBlock = 4, kChunk = 7;
  auto runner = make_tiny_runner(kBlock);
  ASSERT_NE(runner, nullptr);
  ASSERT_EQ(runner->block_size(), kBlock);
  std::ifstream in(std::string(KR_SOURCE_DIR) + "/tests/golden/tiny-llama3.expected.json");
  const json golden = json::parse(in);

  std::vector<Seq> seqs;
  for (const json& c : golden["logits"]) {
    Seq s;
    s.name = c["name"];
    s.prompt = c["ids"].get<std::vector<int32_t>>();
    s.top_ids = c["last_top_ids"].get<std::vector<int32_t>>();
    const double lse = c["last_logsumexp"];
    for (double l : c["last_top_logits"].get<std::vector<double>>()) s.top_logprobs.push_back(l - lse);
    if (c.contains("greedy_next_ids")) {
      s.greedy = c["greedy_next_ids"].get<std::vector<int32_t>>();
      s.greedy_margins = c["greedy_margins"].get<std::vector<double>>();
    }
    seqs.push_back(std::move(s));
  }
  // Blocks handed out in a shuffled order, so that no sequence is contiguous.
  std::vector<int32_t> free_blocks(runner->num_kv_blocks());
  for (int32_t i = 0; i < runner->num_kv_blocks(); ++i) free_blocks[i] = i;
  std::shuffle(free_blocks.begin(), free_blocks.end(), std::mt19937_64(99));

  SamplingParams greedy;
  greedy.temperature = 0;
  greedy.logprobs = 40;
  std::vector<SampledToken> out;
  int steps = 0;
  while (std::any_of(seqs.begin(), seqs.end(), [](const Seq& s) { return !s.done; })) {
    std::vector<SeqStep> batch;
    std::vector<Seq*> owners;
    for (Seq& s : seqs) {
      if (s.done) continue;
      const size_t p = s.fed.size();
      if (p < s.prompt.size()) {
        const size_t n = std::min<size_t>(kChunk, s.prompt.size() - p);
        s.chunk.assign(s.prompt.begin() + p, s.prompt.begin() + p + n);
      } else {
        s.chunk = {s.greedy[s.decoded - 1]};  // teacher-forced: the reference token
      }
      while (static_cast<int64_t>(s.blocks.size()) * kBlock < static_cast<int64_t>(p + s.chunk.size())) {
        ASSERT_FALSE(free_blocks.empty());
        s.blocks.push_back(free_blocks.back());
        free_blocks.pop_back();
      }
      SeqStep st;
      st.seq_id = static_cast<int64_t>(&s - seqs.data());
      st.tokens = s.chunk;
      st.start_pos = static_cast<int32_t>(p);
      st.block_table = s.blocks;
      st.sample = p + s.chunk.size() >= s.prompt.size();
      st.sampling.params = &greedy;
      st.sampling.prompt_ids = s.prompt;
      st.sampling.output_ids = s.output;
      batch.push_back(st);
      owners.push_back(&s);
    }
    ASSERT_TRUE(runner->step(batch, &out).ok());
    ++steps;
    size_t k = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      Seq& s = *owners[i];
      s.fed.insert(s.fed.end(), s.chunk.begin(), s.chunk.end());
      if (!batch[i].sample) continue;
      ASSERT_LT(k, out.size());
      const SampledToken& t = out[k++];
      EXPECT_FALSE(t.non_finite);
      if (s.decoded == 0) {  // first token after the prompt: check the top-40 logprobs
        SCOPED_TRACE(s.name);
        ASSERT_EQ(t.top.size(), 40u);
        for (size_t j = 0; j < 40; ++j) {
          // Reference ids are sorted by logit; where two are within the tolerance
          // their order may differ, so look each reference id up.
          auto it = std::find_if(t.top.begin(), t.top.end(), [&](auto& e) { return e.first == s.top_ids[j]; });
          if (j < 30) {
            ASSERT_NE(it, t.top.end()) << "id " << s.top_ids[j] << " not in our top 40";
          }
          if (it != t.top.end()) {
            EXPECT_NEAR(it->second, s.top_logprobs[j], 2e-4) << "rank " << j;
          }
        }
      }
      if (s.decoded < s.greedy.size()) {
        if (s.greedy_margins[s.decoded] > 1e-3) {
          EXPECT_EQ(t.id, s.greedy[s.decoded]) << s.name << " greedy step " << s.decoded;
        }
        s.output.push_back(s.greedy[s.decoded]);
        ++s.decoded;
      }
      if (s.decoded >= s.greedy.size()) s.done = true;
    }
    EXPECT_EQ(k, out.size());
  }
  EXPECT_GT(steps, 2048 / kChunk);
}

// Plain greedy rows go through Backend::argmax_logprob; rows with top logprobs
// through the host Sampler. Both must agree on the id and its logprob.
TEST(ForwardRunner, DeviceGreedyMatchesHostSampler) {
  auto runner = make_tiny_runner(16);
  ASSERT_NE(runner, nullptr);
  SamplingParams plain, with_top;
  plain.temperature = 0;
  with_top.temperature = 0;
  with_top.logprobs = 1;
  const std::vector<int32_t> prompt = {128000, 791, 6864, 315, 9822, 374};
  const std::vector<int32_t> blocks_a = {0}, blocks_b = {1};
  std::vector<SeqStep> batch(2);
  for (int i = 0; i < 2; ++i) {
    batch[i].seq_id = i;
    batch[i].tokens = prompt;
    batch[i].block_table = i == 0 ? blocks_a : blocks_b;
    batch[i].sample = true;
    batch[i].sampling.params = &plain;
  }
  std::vector<SampledToken> device, host;
  ASSERT_TRUE(runner->step(batch, &device).ok());
  EXPECT_EQ(runner->sampler().last_path(), SamplingPath::kDeviceArgmax);
  batch[0].sampling.params = batch[1].sampling.params = &with_top;
  ASSERT_TRUE(runner->step(batch, &host).ok());
  EXPECT_EQ(runner->sampler().last_path(), SamplingPath::kHost);
  ASSERT_EQ(device.size(), 2u);
  ASSERT_EQ(host.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(device[i].id, host[i].id);
    EXPECT_NEAR(device[i].logprob, host[i].logprob, 1e-5);
    EXPECT_TRUE(device[i].top.empty());
    EXPECT_FALSE(device[i].non_finite);
  }
  EXPECT_EQ(device[0].id, device[1].id);
}

TEST(ForwardRunner, RejectsBadSteps) {
  auto runner = make_tiny_runner(4);
  ASSERT_NE(runner, nullptr);
  SamplingParams greedy;
  greedy.temperature = 0;
  std::vector<int32_t> tokens = {1, 2, 3, 4, 5};
  std::vector<int32_t> one_block = {0};
  SeqStep s;
  s.tokens = tokens;
  s.block_table = one_block;  // covers 4 tokens, 5 fed
  s.sample = true;
  s.sampling.params = &greedy;
  std::vector<SampledToken> out;
  EXPECT_EQ(runner->step(std::span<const SeqStep>(&s, 1), &out).code(), StatusCode::kInvalidArgument);
  std::vector<int32_t> two_blocks = {0, 1};
  s.block_table = two_blocks;
  std::vector<int32_t> bad = {1, 2, 3, 999999, 5};
  s.tokens = bad;
  EXPECT_EQ(runner->step(std::span<const SeqStep>(&s, 1), &out).code(), StatusCode::kInvalidArgument);
  std::vector<int32_t> bad_blocks = {0, runner->num_kv_blocks()};
  s.tokens = tokens;
  s.block_table = bad_blocks;
  EXPECT_EQ(runner->step(std::span<const SeqStep>(&s, 1), &out).code(), StatusCode::kInvalidArgument);
  s.block_table = two_blocks;
  ASSERT_TRUE(runner->step(std::span<const SeqStep>(&s, 1), &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_GE(out[0].id, 0);
  EXPECT_EQ(runner->max_model_len(), std::min<int32_t>(131072, runner->num_kv_blocks() * 4));
  EXPECT_EQ(std::vector<int32_t>(runner->eos_ids().begin(), runner->eos_ids().end()),
            (std::vector<int32_t>{128001, 128008, 128009}));
}

// Overlapped decode: a prefill, then decode steps each launched before the step
// before it is collected, their tokens fed from that step's argmax on the backend,
// give the tokens and logprobs of step() run one at a time with the ids on the host.
// A fed step that does not follow a greedy launch of the same sequences is refused.
TEST(ForwardRunner, FedStepsMatchStepsOneAtATime) {
  constexpr int kSteps = 6;
  auto seq_runner = make_tiny_runner(4);
  auto fed_runner = make_tiny_runner(4);
  ASSERT_NE(seq_runner, nullptr);
  ASSERT_NE(fed_runner, nullptr);
  SamplingParams greedy;
  greedy.temperature = 0;
  const std::vector<std::vector<int32_t>> prompts = {{128000, 791, 6864, 315, 9822, 374}, {128000, 40, 1093}};
  const std::vector<std::vector<int32_t>> tables = {{3, 0, 5, 1}, {2, 6, 4}};  // 16 and 12 positions
  auto prefill = [&](std::vector<SeqStep>* b) {
    b->assign(2, SeqStep{});
    for (int i = 0; i < 2; ++i) {
      (*b)[i].seq_id = 10 + i;
      (*b)[i].tokens = prompts[i];
      (*b)[i].block_table = tables[i];
      (*b)[i].sample = true;
      (*b)[i].sampling.params = &greedy;
    }
  };
  // One at a time.
  std::vector<std::vector<SampledToken>> want;
  std::vector<SeqStep> batch;
  prefill(&batch);
  std::vector<SampledToken> out;
  ASSERT_TRUE(seq_runner->step(batch, &out).ok());
  want.push_back(out);
  std::vector<int32_t> ids(2);
  for (int t = 0; t < kSteps; ++t) {
    for (int i = 0; i < 2; ++i) {
      ids[i] = out[i].id;
      batch[i].tokens = std::span<const int32_t>(&ids[i], 1);
      batch[i].start_pos = static_cast<int32_t>(prompts[i].size()) + t;
    }
    ASSERT_TRUE(seq_runner->step(batch, &out).ok());
    want.push_back(out);
  }
  // Overlapped: launch t + 1 (fed), then collect t.
  const int32_t placeholder = 0;
  prefill(&batch);
  ASSERT_TRUE(fed_runner->launch(batch).ok());
  std::vector<std::vector<SampledToken>> got;
  for (int t = 0; t < kSteps; ++t) {
    for (int i = 0; i < 2; ++i) {
      batch[i].tokens = std::span<const int32_t>(&placeholder, 1);
      batch[i].start_pos = static_cast<int32_t>(prompts[i].size()) + t;
      batch[i].fed = true;
    }
    ASSERT_TRUE(fed_runner->launch(batch).ok()) << t;
    EXPECT_EQ(fed_runner->num_launched(), 2);
    EXPECT_EQ(fed_runner->step(batch, &out).code(), StatusCode::kFailedPrecondition);
    ASSERT_TRUE(fed_runner->collect(&out).ok());
    got.push_back(out);
  }
  ASSERT_TRUE(fed_runner->collect(&out).ok());
  got.push_back(out);
  EXPECT_EQ(fed_runner->num_launched(), 0);
  ASSERT_EQ(got.size(), want.size());
  for (size_t t = 0; t < want.size(); ++t) {
    ASSERT_EQ(got[t].size(), 2u);
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ(got[t][i].id, want[t][i].id) << "step " << t << " row " << i;
      EXPECT_EQ(got[t][i].logprob, want[t][i].logprob) << "step " << t << " row " << i;
    }
  }
  // Refused: a fed step with nothing launched before it, after a step sampled on
  // the host (top logprobs), or of other sequences.
  EXPECT_EQ(fed_runner->launch(batch).code(), StatusCode::kInvalidArgument);
  SamplingParams with_top = greedy;
  with_top.logprobs = 1;
  std::vector<SeqStep> host_batch;
  prefill(&host_batch);
  for (SeqStep& st : host_batch) st.sampling.params = &with_top;
  EXPECT_FALSE(fed_runner->can_feed(host_batch[0]));
  EXPECT_TRUE(fed_runner->can_feed(batch[0]));
  ASSERT_TRUE(fed_runner->launch(host_batch).ok());
  EXPECT_EQ(fed_runner->launch(batch).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(fed_runner->collect(&out).ok());
  prefill(&host_batch);
  ASSERT_TRUE(fed_runner->launch(host_batch).ok());
  std::swap(batch[0], batch[1]);
  EXPECT_EQ(fed_runner->launch(batch).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(fed_runner->collect(&out).ok());
  EXPECT_EQ(fed_runner->collect(&out).code(), StatusCode::kFailedPrecondition);
}

// The reference's top-40 logits at the last position of a golden prompt.
struct GoldenLast {
  std::vector<int32_t> ids;       // the prompt
  std::vector<int32_t> top_ids;   // by logit, highest first
  std::vector<double> top_logits;
  double logsumexp = 0;
};

GoldenLast golden_last(const std::string& name) {
  std::ifstream in(std::string(KR_SOURCE_DIR) + "/tests/golden/tiny-llama3.expected.json");
  const json golden = json::parse(in);
  GoldenLast g;
  for (const json& c : golden["logits"]) {
    if (c["name"] != name) continue;
    g.ids = c["ids"].get<std::vector<int32_t>>();
    g.top_ids = c["last_top_ids"].get<std::vector<int32_t>>();
    g.top_logits = c["last_top_logits"].get<std::vector<double>>();
    g.logsumexp = c["last_logsumexp"];
  }
  EXPECT_FALSE(g.ids.empty()) << name;
  return g;
}

// The greedy choice after `adjust` (which only lowers logits, or sets -inf), worked
// out by hand from the reference's top 40: valid when the winner still beats the
// 40th logit (every id outside the top 40 is below it) by more than our numeric
// distance from the reference.
int32_t expected_greedy(const GoldenLast& g, const std::function<double(int32_t, double)>& adjust) {
  int32_t best = -1;
  double best_v = -INFINITY, second_v = -INFINITY;
  for (size_t j = 0; j < g.top_ids.size(); ++j) {
    const double v = adjust(g.top_ids[j], g.top_logits[j]);
    if (v > best_v) {
      second_v = best_v;
      best_v = v;
      best = g.top_ids[j];
    } else if (v > second_v) {
      second_v = v;
    }
  }
  EXPECT_GT(best_v, g.top_logits.back() + 1e-2) << "the top 40 do not decide this case";
  EXPECT_GT(best_v - second_v, 1e-2) << "near-tie";
  return best;
}

// Rows with penalties, EOS suppression and top logprobs go through
// Backend::sample and give what the host Sampler gives, and both give what the
// penalties applied by hand to the reference logits give; a drawing row gets its
// random bits from its own generator.
TEST(ForwardRunner, DeviceSamplingMatchesHostSampler) {
  ModelOptions opt;
  opt.block_size = 16;
  opt.max_tokens_per_step = 256;
  opt.max_logit_rows = 16;
  auto backend = std::make_unique<HostSamplingBackend>(make_cpu_backend(0, size_t{32} << 20));
  HostSamplingBackend* fake = backend.get();
  auto made = make_forward_runner(kModelDir, std::move(backend), opt);
  ASSERT_TRUE(made.ok()) << made.status().to_string();
  ForwardRunner& runner = **made;
  SamplingParams rep, pf, draw;
  rep.temperature = 0;
  rep.repetition_penalty = 3.0f;
  rep.logprobs = 5;
  pf.temperature = 0;
  pf.presence_penalty = 2.0f;
  pf.frequency_penalty = 1.5f;
  draw.temperature = 0.9f;
  draw.top_k = 4;
  const GoldenLast g = golden_last("short_text");
  const std::vector<int32_t> prompt = g.ids;
  const std::vector<std::vector<int32_t>> blocks = {{0}, {1}, {2}};
  std::mt19937_64 rng(42);
  std::vector<SeqStep> batch(3);
  for (int i = 0; i < 3; ++i) {
    batch[i].seq_id = 10 + i;
    batch[i].tokens = prompt;
    batch[i].block_table = blocks[i];
    batch[i].sample = true;
  }
  // Unpenalised greedy ids first: the "outputs" the penalties see include them,
  // so the penalties must change the choice.
  SamplingParams plain;
  plain.temperature = 0;
  batch[0].sampling.params = batch[1].sampling.params = &plain;
  std::vector<SampledToken> unpenalised;
  ASSERT_TRUE(runner.step(std::span<const SeqStep>(batch.data(), 2), &unpenalised).ok());
  const int calls_before = fake->calls;  // 1: the wrapper refuses argmax_logprob, sample() served it
  const std::vector<int32_t> output = {unpenalised[0].id, 6864, unpenalised[0].id};
  const SamplingParams* params[3] = {&rep, &pf, &draw};
  for (int i = 0; i < 3; ++i) {
    batch[i].sampling.params = params[i];
    batch[i].sampling.prompt_ids = prompt;
    batch[i].sampling.output_ids = output;
  }
  batch[1].sampling.suppress_eos = true;
  batch[2].sampling.rng = &rng;
  std::mt19937_64 rng_copy = rng;
  std::vector<SampledToken> device, host;
  ASSERT_TRUE(runner.step(batch, &device).ok());
  EXPECT_EQ(fake->calls, calls_before + 1);
  ASSERT_EQ(fake->last_rows.size(), 3u);
  EXPECT_EQ(fake->last_rows[2].random_bits, rng_copy());
  EXPECT_EQ(fake->last_rows[1].suppress_eos, 1);
  EXPECT_EQ(runner.sampler().last_path(), SamplingPath::kDeviceSample);
  runner.sampler().set_use_device_sampling(false);
  ASSERT_TRUE(runner.step(batch, &host).ok());
  EXPECT_EQ(fake->calls, calls_before + 1);  // the host Sampler served this step
  ASSERT_EQ(device.size(), 3u);
  ASSERT_EQ(host.size(), 3u);
  EXPECT_EQ(runner.sampler().last_path(), SamplingPath::kHost);
  for (int i = 0; i < 2; ++i) {  // the greedy rows
    EXPECT_EQ(device[i].id, host[i].id);
    EXPECT_FLOAT_EQ(device[i].logprob, host[i].logprob);
    EXPECT_EQ(device[i].top, host[i].top);
    EXPECT_FALSE(device[i].non_finite);
  }
  EXPECT_EQ(device[0].top.size(), 5u);
  EXPECT_NE(device[0].id, unpenalised[0].id);  // else this test would prove little
  EXPECT_NE(device[1].id, unpenalised[1].id);

  // Independent expectations: the penalties applied by hand to the reference's logits.
  EXPECT_EQ(unpenalised[0].id, g.top_ids[0]);
  const auto count_in = [](const std::vector<int32_t>& v, int32_t id) {
    return static_cast<double>(std::count(v.begin(), v.end(), id));
  };
  // Repetition (HF): every id of the prompt or the output, once: positive / 3, negative × 3.
  const int32_t want_rep = expected_greedy(g, [&](int32_t id, double l) {
    if (count_in(prompt, id) + count_in(output, id) == 0) return l;
    return l > 0 ? l / 3.0 : l * 3.0;
  });
  // Presence and frequency (OpenAI) over the output only; the EOS ids suppressed.
  const int32_t want_pf = expected_greedy(g, [&](int32_t id, double l) {
    for (int32_t e : {128001, 128008, 128009})
      if (id == e) return -std::numeric_limits<double>::infinity();
    const double n = count_in(output, id);
    return l - 1.5 * n - (n > 0 ? 2.0 : 0.0);
  });
  EXPECT_EQ(device[0].id, want_rep);
  EXPECT_EQ(device[1].id, want_pf);
  // top-k 4: the draw is one of the reference's four most likely ids.
  EXPECT_NE(std::find(g.top_ids.begin(), g.top_ids.begin() + 4, device[2].id), g.top_ids.begin() + 4) << device[2].id;
  // Every reported logprob is the raw (unpenalised) log-softmax of the reference.
  for (int i = 0; i < 3; ++i) {
    const auto at = std::find(g.top_ids.begin(), g.top_ids.end(), device[i].id);
    ASSERT_NE(at, g.top_ids.end()) << "row " << i;
    EXPECT_NEAR(device[i].logprob, g.top_logits[at - g.top_ids.begin()] - g.logsumexp, 2e-4) << "row " << i;
  }
  for (size_t j = 0; j < device[0].top.size(); ++j) {
    EXPECT_EQ(device[0].top[j].first, g.top_ids[j]) << j;
    EXPECT_NEAR(device[0].top[j].second, g.top_logits[j] - g.logsumexp, 2e-4) << j;
  }
}

}  // namespace
}  // namespace kr

namespace kr {
namespace {

// The step cost model from the model's shape and the backend's rates: a Gemma 2
// folder with two sliding layers (window 16) and one global layer, on the CPU.
TEST(ForwardRunner, StepCostModelFromShapeAndRates) {
  ModelOptions opt;
  opt.max_tokens_per_step = 64;
  auto r = make_forward_runner(std::string(KR_SOURCE_DIR) + "/tests/golden/families/gemma2",
                               make_cpu_backend(2, size_t{8} << 20), opt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const ModelConfig& c = (*r)->model().config();
  const BackendRates rates = (*r)->model().backend().rates();
  ASSERT_GT(rates.matmul_flop_s, 0.0);
  const StepCostModel m = (*r)->step_cost_model();
  ASSERT_TRUE(m.known());
  const double H = c.hidden_size, I = c.intermediate_size, D = c.head_dim, Hq = c.num_attention_heads,
               Hkv = c.num_key_value_heads;
  const double per_layer = (Hq + 2 * Hkv) * D * H + Hq * D * H + 3 * I * H;
  EXPECT_NEAR(m.token_ms, 2 * per_layer * c.num_hidden_layers / rates.matmul_flop_s * 1e3, 1e-12);
  // One global layer, two sliding ones of window 16; f32 K and V rows on the CPU.
  EXPECT_NEAR(m.pair_ms, 4 * Hq * D * 1 / rates.attention_flop_s * 1e3, 1e-15);
  EXPECT_NEAR(m.window_pair_ms, 4 * Hq * D * 2 / rates.attention_flop_s * 1e3, 1e-15);
  EXPECT_NEAR(m.ctx_ms, 2 * Hkv * D * 4 * 1 / rates.memory_byte_s * 1e3, 1e-15);
  EXPECT_NEAR(m.window_ctx_ms, 2 * Hkv * D * 4 * 2 / rates.memory_byte_s * 1e3, 1e-15);
  EXPECT_EQ(m.window, 16);
  EXPECT_GT(m.fixed_ms, rates.step_overhead_s * 1e3);  // plus the weights read once
  // Past the window only the global layer's cost grows with the context.
  const double near = m.chunk_ms(100, 8), far = m.chunk_ms(10000, 8);
  const double reads = (8 + m.tile_tokens - 1) / m.tile_tokens;  // the CPU: each token reads the keys
  EXPECT_EQ(m.tile_tokens, 1);
  EXPECT_NEAR(far - near, m.pair_ms * 8 * (10000 - 100) + reads * m.ctx_ms * (10008 - 108), 1e-9);
}

}  // namespace
}  // namespace kr
