// Constrained decoding through the engine:
//  - the real tiny Llama on the CPU backend at batch 64, constrained rows
//    (JSON Schema, regex, choices, free JSON) mixed with free ones, sampled at
//    temperature 1.0 (random weights: only the masks make output valid):
//    every token of a constrained request is one its grammar allowed at that
//    point (replayed with an independent matcher), and a request that stops
//    on EOS has completed its grammar;
//  - with a scripted runner that ignores masks: a token the grammar refuses
//    fails that request alone; a trigger ("</think>") keeps the grammar off
//    until it has been generated.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>

#include "engine/engine.h"
#include "engine/forward_runner.h"
#include "grammar/grammar_compiler.h"
#include "grammar/matcher.h"
#include "grammar/vocab_for_test.h"
#include "metrics/metrics.h"

namespace kr {
namespace {

const std::string kModelDir = std::string(KR_SOURCE_DIR) + "/models/tiny-llama3";

struct Outcome {
  std::vector<int32_t> tokens;
  FinishReason reason = FinishReason::kNone;
  Status error;
  bool finished = false;
};

// Runs `reqs` (ids, prompts and sampling set) through one engine.
std::map<RequestId, Outcome> run_all(ModelRunner* runner, std::vector<GenerationRequest> reqs) {
  SteadyClock clock;
  Metrics metrics(&clock, MetricsOptions{});
  EngineConfig config;
  config.admissions_per_step = 64;
  config.max_num_seqs = 64;
  config.max_batched_tokens = 512;
  config.window_ms = 0;
  Engine engine(runner, config, &clock, &metrics);
  std::mutex mu;
  std::condition_variable cv;
  std::map<RequestId, Outcome> out;
  size_t finished = 0;
  const size_t n = reqs.size();
  for (GenerationRequest& r : reqs) {
    r.on_event = [&](TokenEvent&& ev) {
      std::lock_guard<std::mutex> lock(mu);
      Outcome& o = out[ev.request_id];
      for (const SampledToken& t : ev.tokens) o.tokens.push_back(t.id);
      if (ev.finished) {
        o.finished = true;
        o.reason = ev.finish_reason;
        o.error = ev.error;
        ++finished;
        cv.notify_all();
      }
    };
    EXPECT_TRUE(engine.submit(std::move(r)).ok());
  }
  engine.start();
  std::unique_lock<std::mutex> lock(mu);
  EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(300), [&] { return finished == n; }));
  lock.unlock();
  engine.stop(0);
  return out;
}

bool allowed(const std::vector<uint32_t>& w, int32_t id) { return (w[id >> 5] >> (id & 31)) & 1u; }

TEST(EngineConstrained, Batch64MixedRowsNeverLeaveTheMask) {
  auto vocab = grammar::load_vocabulary(kModelDir + "/tokenizer.json", {"<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"});
  ASSERT_TRUE(vocab.ok()) << vocab.status().to_string();
  grammar::GrammarCompiler compiler(*vocab);
  const std::vector<grammar::GrammarSpec> specs = {
      grammar::GrammarSpec::json_schema(
          R"({"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer","minimum":0,"maximum":150},"tags":{"type":"array","items":{"enum":["a","b","c"]},"maxItems":3}},"required":["name","age","tags"],"additionalProperties":false})"),
      grammar::GrammarSpec::regex("[a-z]{2,6}-[0-9]{3}"),
      grammar::GrammarSpec::choices_of({"yes", "no", "maybe later"}),
      grammar::GrammarSpec::json_object(),
  };
  std::vector<std::shared_ptr<const grammar::CompiledGrammar>> grammars;
  for (const auto& s : specs) {
    auto g = compiler.compile(s);
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    grammars.push_back(*g);
  }

  ModelOptions opt;
  opt.block_size = 16;
  opt.max_tokens_per_step = 512;
  opt.max_logit_rows = 64;
  auto runner = make_forward_runner(kModelDir, make_cpu_backend(2, size_t{64} << 20), opt);
  ASSERT_TRUE(runner.ok()) << runner.status().to_string();

  std::mt19937 rng(7);
  std::vector<GenerationRequest> reqs;
  std::map<RequestId, size_t> grammar_of;  // constrained requests -> index in grammars
  for (int i = 0; i < 64; ++i) {
    GenerationRequest r;
    r.id = i;
    r.prompt_ids.resize(2 + rng() % 12);
    for (auto& t : r.prompt_ids) t = static_cast<int32_t>(rng() % 128000);
    r.max_tokens = 24;
    r.sampling.temperature = i % 5 == 4 ? 0.0f : 1.0f;  // mostly random draws, some greedy
    r.sampling.seed = 1000 + i;
    if (i % 2 == 0) {
      const size_t g = static_cast<size_t>(i / 2) % grammars.size();
      r.grammar = grammars[g];
      grammar_of[r.id] = g;
    }
    reqs.push_back(std::move(r));
  }
  const auto out = run_all(runner->get(), std::move(reqs));
  ASSERT_EQ(out.size(), 64u);
  int ended_by_grammar = 0;
  for (const auto& [id, o] : out) {
    SCOPED_TRACE(id);
    ASSERT_TRUE(o.finished);
    ASSERT_NE(o.reason, FinishReason::kError) << o.error.to_string();
    auto it = grammar_of.find(id);
    if (it == grammar_of.end()) continue;
    grammar::GrammarMatcher m(grammars[it->second]);
    std::vector<uint32_t> w((*vocab)->mask_words());
    for (size_t k = 0; k < o.tokens.size(); ++k) {
      m.fill_mask(w.data());
      ASSERT_TRUE(allowed(w, o.tokens[k])) << "token " << o.tokens[k] << " at " << k << " is outside the mask";
      ASSERT_TRUE(m.accept_token(o.tokens[k]));
    }
    if (o.reason == FinishReason::kStop) {
      EXPECT_TRUE(m.is_finished());  // stopped on EOS, which the grammar allowed only at its end
      ++ended_by_grammar;
    }
  }
  // The short grammars (regex, choices) end well within 24 tokens.
  EXPECT_GE(ended_by_grammar, 8);
  EXPECT_GT((*runner)->mask_stats().rows, 0);
}

// A runner that ignores masks: each sequence's tokens come from its script.
class ScriptedRunner final : public ModelRunner {
 public:
  explicit ScriptedRunner(std::map<int64_t, std::vector<int32_t>> scripts) : scripts_(std::move(scripts)) {}
  int32_t block_size() const override { return 16; }
  int32_t num_kv_blocks() const override { return 64; }
  int32_t max_model_len() const override { return 512; }
  std::span<const int32_t> eos_ids() const override { return eos_; }
  Status step(std::span<const SeqStep> seqs, std::vector<SampledToken>* out) override {
    for (const SeqStep& s : seqs) {
      if (!s.sample) continue;
      const std::vector<int32_t>& script = scripts_[s.seq_id];
      size_t& k = next_[s.seq_id];
      if (s.constraint != nullptr) active_seen_[s.seq_id].push_back(s.constraint->active());
      SampledToken t;
      t.id = k < script.size() ? script[k] : 2;
      ++k;
      out->push_back(t);
    }
    return Status::Ok();
  }
  std::map<int64_t, std::vector<bool>> active_seen_;

 private:
  std::map<int64_t, std::vector<int32_t>> scripts_;
  std::map<int64_t, size_t> next_;
  std::vector<int32_t> eos_{2};
};

TEST(EngineConstrained, RefusedTokensFailOnlyTheirRequestAndTheTriggerGatesTheGrammar) {
  // Vocabulary: ids 0..255 bytes shifted by 3 (so that 2 is EOS): id = byte + 3; then "</think>".
  std::vector<std::string> toks(3);
  toks[2] = "<eos>";
  for (int b = 0; b < 256; ++b) toks.push_back(std::string(1, static_cast<char>(b)));
  const int32_t think = static_cast<int32_t>(toks.size());
  toks.push_back("</think>");
  auto vocab = grammar::TokenVocabulary::create(toks, {2}, {});
  ASSERT_TRUE(vocab.ok());
  grammar::GrammarCompiler compiler(*vocab);
  auto g = compiler.compile(grammar::GrammarSpec::regex("[0-9]+"));
  ASSERT_TRUE(g.ok());
  auto id = [](char c) { return static_cast<int32_t>(static_cast<unsigned char>(c)) + 3; };
  std::map<int64_t, std::vector<int32_t>> scripts = {
      {1, {id('1'), id('2'), 2}},                       // fits: ends on EOS
      {2, {id('1'), id('x'), id('3')}},                 // 'x' refused: fails
      {3, {id('h'), id('m'), think, id('4'), 2}},       // free until </think>, then digits
      {4, {id('h'), id('<'), id('/'), id('t'), id('h'), id('i'), id('n'), id('k'), id('>'), id('z')}},  // 'z' after
      {5, {id('a'), id('b'), 2}},                       // unconstrained
  };
  ScriptedRunner runner(scripts);
  std::vector<GenerationRequest> reqs;
  for (int64_t i = 1; i <= 5; ++i) {
    GenerationRequest r;
    r.id = i;
    r.prompt_ids = {5, 6};
    r.max_tokens = 16;
    r.sampling.temperature = 0;
    if (i != 5) r.grammar = *g;
    if (i == 3 || i == 4) r.grammar_trigger = "</think>";
    reqs.push_back(std::move(r));
  }
  const auto out = run_all(&runner, std::move(reqs));
  EXPECT_EQ(out.at(1).reason, FinishReason::kStop);
  EXPECT_EQ(out.at(1).tokens.size(), 3u);
  EXPECT_EQ(out.at(2).reason, FinishReason::kError);
  EXPECT_NE(out.at(2).error.message().find("structured output"), std::string::npos) << out.at(2).error.to_string();
  EXPECT_EQ(out.at(2).tokens.size(), 1u);  // the refused token is not published
  EXPECT_EQ(out.at(3).reason, FinishReason::kStop);
  EXPECT_EQ(runner.active_seen_.at(3), (std::vector<bool>{false, false, false, true, true}));
  EXPECT_EQ(out.at(4).reason, FinishReason::kError);  // "</think>" spelled byte by byte, then 'z'
  EXPECT_EQ(out.at(4).tokens.size(), 9u);
  EXPECT_EQ(out.at(5).reason, FinishReason::kStop);
}

}  // namespace
}  // namespace kr
