// ForwardRunner on the tiny fixture: all six golden prompts at once in one batch,
// with 4-token KV blocks handed out in a shuffled order and prompts prefilled
// in chunks of 7 tokens next to other sequences' decode tokens. The sampled
// logprobs and greedy tokens must match the Hugging Face references.
#include "engine/forward_runner.h"

#include <algorithm>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

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
      st.sampling = &greedy;
      st.prompt_ids = s.prompt;
      st.output_ids = s.output;
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
      EXPECT_EQ(t.seq_id, batch[i].seq_id);
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
    batch[i].sampling = &plain;
  }
  std::vector<SampledToken> device, host;
  ASSERT_TRUE(runner->step(batch, &device).ok());
  batch[0].sampling = batch[1].sampling = &with_top;
  ASSERT_TRUE(runner->step(batch, &host).ok());
  ASSERT_EQ(device.size(), 2u);
  ASSERT_EQ(host.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(device[i].seq_id, i);
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
  s.sampling = &greedy;
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

// ---- device sampling plumbing ----

TEST(ForwardRunner, PackDeviceSamplingRows) {
  SamplingParams greedy_rep, draw, too_many;
  greedy_rep.temperature = 0;
  greedy_rep.repetition_penalty = 1.5f;
  greedy_rep.logprobs = 3;
  draw.temperature = 0.8f;
  draw.top_k = 5;
  draw.top_p = 0.9f;
  draw.min_p = 0.1f;
  draw.presence_penalty = 0.5f;
  too_many.logprobs = kDeviceSamplingMaxTop + 1;
  const std::vector<int32_t> prompt = {4, 9, 4}, output = {7, 9, 7, 50000};
  std::mt19937_64 rng(5), default_rng(6);
  std::vector<SeqStep> seqs(3);
  seqs[0].sample = false;  // a prefill chunk: no row
  seqs[1].sample = true;
  seqs[1].sampling = &greedy_rep;
  seqs[1].prompt_ids = prompt;
  seqs[1].output_ids = output;
  seqs[1].suppress_eos = true;
  seqs[2].sample = true;
  seqs[2].sampling = &draw;
  seqs[2].prompt_ids = prompt;
  seqs[2].output_ids = output;
  seqs[2].rng = &rng;
  std::mt19937_64 rng_copy = rng, default_copy = default_rng;
  DeviceSamplingBatch b;
  ASSERT_TRUE(pack_device_sampling(seqs, 1000, &default_rng, &b));
  ASSERT_EQ(b.rows.size(), 2u);
  // Greedy with repetition: prompt and output ids (50000 is outside the vocab), no draw.
  EXPECT_EQ(b.rows[0].suppress_eos, 1);
  EXPECT_EQ(b.rows[0].top_logprobs, 3);
  EXPECT_EQ(b.rows[0].repetition_penalty, 1.5f);
  EXPECT_EQ(b.rows[0].random_bits, 0u);
  EXPECT_EQ(std::vector<int32_t>(b.penalty_ids.begin() + b.rows[0].penalty_begin,
                                 b.penalty_ids.begin() + b.rows[0].penalty_end),
            (std::vector<int32_t>{4, 7, 9}));
  EXPECT_EQ(std::vector<int32_t>(b.penalty_counts.begin() + b.rows[0].penalty_begin,
                                 b.penalty_counts.begin() + b.rows[0].penalty_end),
            (std::vector<int32_t>{0, 2, 1}));
  // Presence only: output ids; one value from the sequence's own rng.
  EXPECT_EQ(b.rows[1].temperature, 0.8f);
  EXPECT_EQ(b.rows[1].top_k, 5);
  EXPECT_EQ(b.rows[1].top_p, 0.9f);
  EXPECT_EQ(b.rows[1].min_p, 0.1f);
  EXPECT_EQ(b.rows[1].top_logprobs, 0);
  EXPECT_EQ(std::vector<int32_t>(b.penalty_ids.begin() + b.rows[1].penalty_begin,
                                 b.penalty_ids.begin() + b.rows[1].penalty_end),
            (std::vector<int32_t>{7, 9}));
  EXPECT_EQ(b.rows[1].random_bits, rng_copy());
  EXPECT_EQ(rng(), rng_copy());          // exactly one value was taken
  EXPECT_EQ(default_rng(), default_copy());  // the default generator was not touched
  // Without its own rng a drawing row uses the default one.
  seqs[2].rng = nullptr;
  ASSERT_TRUE(pack_device_sampling(seqs, 1000, &default_rng, &b));
  EXPECT_EQ(b.rows[1].random_bits, default_copy());
  // Too many logprobs: refused before anything is drawn.
  seqs[1].sampling = &too_many;
  seqs[2].rng = &rng;
  ASSERT_FALSE(pack_device_sampling(seqs, 1000, &default_rng, &b));
  EXPECT_EQ(rng(), rng_copy());
}

// A CPU backend that also implements Backend::sample, with the host Sampler on
// the inputs rebuilt from the packed rows (penalty entries -> prompt/output ids,
// random_bits -> a generator). It proves the runner's packing and unpacking.
class HostSamplingBackend final : public Backend {
 public:
  explicit HostSamplingBackend(std::unique_ptr<Backend> inner) : in_(std::move(inner)) {}
  std::string name() const override { return "host-sampling"; }
  DType activation_dtype() const override { return in_->activation_dtype(); }
  Tensor alloc(DType dtype, std::initializer_list<int64_t> dims) override { return in_->alloc(dtype, dims); }
  void free(Tensor& t) override { in_->free(t); }
  Tensor upload_weight(const Tensor& host) override { return in_->upload_weight(host); }
  bool upload_keeps_host_pointer() const override { return in_->upload_keeps_host_pointer(); }
  StatusOr<LinearWeight> upload_quantized(const QuantizedMatrix& m) override { return in_->upload_quantized(m); }
  void copy_from_host(Tensor& dst, const void* src, size_t bytes) override { in_->copy_from_host(dst, src, bytes); }
  void copy_to_host(void* dst, const Tensor& src, size_t bytes) override { in_->copy_to_host(dst, src, bytes); }
  void fill_zero(Tensor& t) override { in_->fill_zero(t); }
  void synchronize() override { in_->synchronize(); }
  size_t kv_cache_budget_bytes() const override { return in_->kv_cache_budget_bytes(); }
  void set_step_metadata(const StepMetadata& meta) override { in_->set_step_metadata(meta); }
  void embedding(const LinearWeight& table, const Tensor& ids, Tensor& out) override { in_->embedding(table, ids, out); }
  void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) override { in_->rms_norm(x, w, eps, out); }
  void add_rms_norm(Tensor& residual, const Tensor& x, const Tensor& w, float eps, Tensor& out) override {
    in_->add_rms_norm(residual, x, w, eps, out);
  }
  void matmul(const Tensor& x, const LinearWeight& w, Tensor& out) override { in_->matmul(x, w, out); }
  void rope(Tensor& qkv, int q_heads, int kv_heads, const RopeParams& rope) override {
    in_->rope(qkv, q_heads, kv_heads, rope);
  }
  void store_kv(const Tensor& qkv, int q_heads, int kv_heads, int head_dim, KvLayer& kv) override {
    in_->store_kv(qkv, q_heads, kv_heads, head_dim, kv);
  }
  void attention(const Tensor& qkv, const KvLayer& kv, int q_heads, int kv_heads, int head_dim, float scale,
                 Tensor& out) override {
    in_->attention(qkv, kv, q_heads, kv_heads, head_dim, scale, out);
  }
  void silu_mul(const Tensor& gate_up, Tensor& out) override { in_->silu_mul(gate_up, out); }
  void gather_rows(const Tensor& x, const Tensor& idx, Tensor& out) override { in_->gather_rows(x, idx, out); }
  bool implements_sample() const override { return true; }

  bool sample(const Tensor& logits, std::span<const DeviceSamplingRow> rows, std::span<const int32_t> penalty_ids,
              std::span<const int32_t> penalty_counts, std::span<const int32_t> eos_ids,
              DeviceSampleResult* out) override {
    ++calls;
    EXPECT_EQ(logits.dim(0), static_cast<int64_t>(rows.size()));  // one logits row per sampling row
    EXPECT_EQ(penalty_ids.size(), penalty_counts.size());
    last_rows.assign(rows.begin(), rows.end());
    const size_t V = static_cast<size_t>(logits.dim(1));
    std::vector<float> host(rows.size() * V);
    in_->copy_to_host(host.data(), logits, host.size() * sizeof(float));
    for (size_t r = 0; r < rows.size(); ++r) {
      const DeviceSamplingRow& row = rows[r];
      SamplingParams p;
      p.temperature = row.temperature;
      p.top_p = row.top_p;
      p.top_k = row.top_k;
      p.min_p = row.min_p;
      p.repetition_penalty = row.repetition_penalty;
      p.presence_penalty = row.presence_penalty;
      p.frequency_penalty = row.frequency_penalty;
      p.logprobs = row.top_logprobs > 0 ? row.top_logprobs : -1;
      std::vector<int32_t> prompt, output;
      for (int32_t e = row.penalty_begin; e < row.penalty_end; ++e) {
        prompt.push_back(penalty_ids[e]);
        output.insert(output.end(), penalty_counts[e], penalty_ids[e]);
      }
      std::mt19937_64 rng(row.random_bits);
      SampleInput in;
      in.params = &p;
      in.prompt_ids = prompt;
      in.output_ids = output;
      in.suppress_eos = row.suppress_eos != 0;
      in.eos_ids = eos_ids;
      in.rng = &rng;
      const SampledToken t = sampler_.sample(std::span<const float>(host.data() + r * V, V), in);
      out[r].id = t.id;
      out[r].logprob = t.logprob;
      out[r].non_finite = t.non_finite ? 1 : 0;
      out[r].num_top = static_cast<int32_t>(t.top.size());
      for (size_t k = 0; k < t.top.size(); ++k) {
        out[r].top_ids[k] = t.top[k].first;
        out[r].top_logprobs[k] = t.top[k].second;
      }
    }
    return true;
  }

  int calls = 0;
  std::vector<DeviceSamplingRow> last_rows;

 private:
  std::unique_ptr<Backend> in_;
  Sampler sampler_;
};

// Rows with penalties, EOS suppression and top logprobs go through
// Backend::sample and give what the host Sampler gives; a drawing row gets its
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
  const std::vector<int32_t> prompt = {128000, 791, 6864, 315, 9822, 374};
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
  batch[0].sampling = batch[1].sampling = &plain;
  std::vector<SampledToken> unpenalised;
  ASSERT_TRUE(runner.step(std::span<const SeqStep>(batch.data(), 2), &unpenalised).ok());
  const int calls_before = fake->calls;  // 1: the CPU backend has no argmax_logprob
  const std::vector<int32_t> output = {unpenalised[0].id, 6864, unpenalised[0].id};
  const SamplingParams* params[3] = {&rep, &pf, &draw};
  for (int i = 0; i < 3; ++i) {
    batch[i].sampling = params[i];
    batch[i].prompt_ids = prompt;
    batch[i].output_ids = output;
  }
  batch[1].suppress_eos = true;
  batch[2].rng = &rng;
  std::mt19937_64 rng_copy = rng;
  std::vector<SampledToken> device, host;
  ASSERT_TRUE(runner.step(batch, &device).ok());
  EXPECT_EQ(fake->calls, calls_before + 1);
  ASSERT_EQ(fake->last_rows.size(), 3u);
  EXPECT_EQ(fake->last_rows[2].random_bits, rng_copy());
  EXPECT_EQ(fake->last_rows[1].suppress_eos, 1);
  runner.set_use_device_sampling(false);
  ASSERT_TRUE(runner.step(batch, &host).ok());
  EXPECT_EQ(fake->calls, calls_before + 1);  // the host Sampler served this step
  ASSERT_EQ(device.size(), 3u);
  ASSERT_EQ(host.size(), 3u);
  for (int i = 0; i < 2; ++i) {  // the greedy rows
    EXPECT_EQ(device[i].seq_id, 10 + i);
    EXPECT_EQ(device[i].id, host[i].id);
    EXPECT_FLOAT_EQ(device[i].logprob, host[i].logprob);
    EXPECT_EQ(device[i].top, host[i].top);
    EXPECT_FALSE(device[i].non_finite);
  }
  EXPECT_EQ(device[0].top.size(), 5u);
  EXPECT_EQ(device[2].seq_id, 12);
  EXPECT_GE(device[2].id, 0);
  EXPECT_NE(device[0].id, unpenalised[0].id);  // else this test would prove little
  EXPECT_NE(device[1].id, unpenalised[1].id);
}

}  // namespace
}  // namespace kr
