// Matchers of one CompiledGrammar on several threads at once (masks are
// computed lazily and published with atomics; region walks are cached in the
// shared vocabulary): every thread must see exactly the single-threaded
// masks. Run under TSan by the sanitizer stage.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "grammar/grammar_compiler.h"
#include "grammar/matcher.h"
#include "grammar/random_walk_for_test.h"
#include "grammar/vocab_for_test.h"

namespace kr::grammar {
namespace {

uint64_t hash_mask(const std::vector<uint32_t>& bits) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (uint32_t w : bits) h = (h ^ w) * 0x100000001b3ULL;
  return h;
}

const char* kSchema = R"({"type":"object","properties":{
  "name":{"type":"string","maxLength":12},"tags":{"type":"array","items":{"enum":["a","bb","ccc"]}},
  "score":{"type":"number","minimum":0,"maximum":10},"child":{"$ref":"#"}},"required":["name","tags"]})";

TEST(GrammarConcurrency, SharedGrammarSameMasksOnEveryThread) {
  auto vocab = *load_vocabulary(std::string(KR_SOURCE_DIR) + "/models/tiny-llama3/tokenizer.json",
                                {"<|eot_id|>", "<|end_of_text|>"});
  const GrammarSpec spec = GrammarSpec::json_schema(kSchema);
  // Reference: token sequences and mask hashes from one thread, own grammar.
  std::vector<std::vector<int32_t>> walks;
  std::vector<std::vector<uint64_t>> hashes;
  {
    GrammarCompiler c(vocab);
    auto g = *c.compile(spec);
    const WalkTokenClasses classes = WalkTokenClasses::for_vocab(*vocab);
    std::mt19937_64 rng(11);
    for (int i = 0; i < 6; ++i) {
      WalkResult w = random_walk(g, classes, rng);
      ASSERT_FALSE(w.mask_error);
      GrammarMatcher m(g);
      std::vector<uint32_t> bits(vocab->mask_words());
      std::vector<uint64_t> h;
      for (int32_t t : w.tokens) {
        m.fill_mask(bits.data());
        h.push_back(hash_mask(bits));
        ASSERT_TRUE(m.accept_token(t));
      }
      walks.push_back(w.tokens);
      hashes.push_back(h);
    }
  }
  // A fresh grammar (nothing computed yet), replayed by four threads at once.
  GrammarCompiler c(vocab);
  auto g = *c.compile(spec);
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<uint32_t> bits(vocab->mask_words());
      for (size_t k = 0; k < walks.size(); ++k) {
        const size_t w = (k + static_cast<size_t>(t)) % walks.size();
        GrammarMatcher m(g);
        for (size_t i = 0; i < walks[w].size(); ++i) {
          m.fill_mask(bits.data());
          failures[t] += hash_mask(bits) != hashes[w][i];
          failures[t] += !m.accept_token(walks[w][i]);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

TEST(GrammarConcurrency, CompilerCacheSharesOneGrammar) {
  std::vector<std::string> toks{""};
  for (int b = 0; b < 256; ++b) toks.push_back(std::string(1, static_cast<char>(b)));
  auto vocab = *TokenVocabulary::create(toks, {0});
  GrammarCompiler c(vocab, {}, 4);
  const GrammarSpec spec = GrammarSpec::regex("[a-z]{1,8}@[a-z]+\\.com");
  std::vector<std::shared_ptr<const CompiledGrammar>> got(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) threads.emplace_back([&, t] { got[t] = *c.compile(spec); });
  for (auto& th : threads) th.join();
  for (int t = 1; t < 8; ++t) EXPECT_EQ(got[t], got[0]);
  // Errors are cached too, and the cache is bounded.
  EXPECT_FALSE(c.compile(GrammarSpec::regex("(")).ok());
  EXPECT_FALSE(c.compile(GrammarSpec::regex("(")).ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.compile(GrammarSpec::regex("x{" + std::to_string(i) + "}")).ok());
  EXPECT_LE(c.stats().entries, 4u);
  // 20 calls, each a hit or a miss. Of the 8 concurrent calls, every one that starts before
  // the first has finished compiles too and counts a miss (slow builds such as TSan's see
  // several), so the one certain hit is the second "(".
  EXPECT_EQ(c.stats().hits + c.stats().misses, 20u);
  EXPECT_GE(c.stats().hits, 1u);
  EXPECT_GE(c.stats().misses, 12u);
}

}  // namespace
}  // namespace kr::grammar
