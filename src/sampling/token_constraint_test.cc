// TokenConstraint (grammar matcher as the engine uses it: masks, accept, the
// "</think>" trigger, EOS) and StepMasks (masks of a step on worker threads,
// the same as computed one by one).
#include "sampling/token_constraint.h"

#include <gtest/gtest.h>

#include <memory>
#include <random>

#include "grammar/grammar_compiler.h"
#include "sampling/step_masks.h"

namespace kr {
namespace {

// Vocabulary: the 256 single bytes, then "</think>", "ab", EOS.
constexpr int32_t kThink = 256, kAb = 257, kEos = 258;

std::shared_ptr<const grammar::TokenVocabulary> vocab() {
  static const auto v = [] {
    std::vector<std::string> toks;
    for (int b = 0; b < 256; ++b) toks.push_back(std::string(1, static_cast<char>(b)));
    toks.push_back("</think>");
    toks.push_back("ab");
    toks.push_back("<eos>");
    return *grammar::TokenVocabulary::create(toks, {kEos}, {});
  }();
  return v;
}

std::shared_ptr<const grammar::CompiledGrammar> compile(const std::string& regex) {
  static grammar::GrammarCompiler compiler(vocab());
  auto g = compiler.compile(grammar::GrammarSpec::regex(regex));
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  return *g;
}

bool bit(const std::vector<uint32_t>& w, int32_t id) { return (w[id >> 5] >> (id & 31)) & 1u; }

TEST(TokenConstraint, MasksFollowTheGrammarAndEosOnlyAtTheEnd) {
  TokenConstraint c(compile("a[bc]+"));
  ASSERT_TRUE(c.active());
  std::vector<uint32_t> w(c.mask_words());
  EXPECT_EQ(c.fill_mask(w.data()), 2u);  // "a" and "ab"
  EXPECT_TRUE(bit(w, 'a'));
  EXPECT_TRUE(bit(w, kAb));
  EXPECT_FALSE(bit(w, kEos));
  EXPECT_FALSE(c.accept('b'));  // not allowed: refused, with a reason
  EXPECT_NE(c.error().find("not allowed"), std::string::npos);
  TokenConstraint d(compile("a[bc]+"));
  ASSERT_TRUE(d.accept(kAb));
  d.fill_mask(w.data());
  EXPECT_TRUE(bit(w, kEos));  // complete: may end
  EXPECT_TRUE(bit(w, 'c'));
  EXPECT_TRUE(d.accept(kEos));
  EXPECT_EQ(d.fill_mask(w.data()), 1u);  // after EOS only EOS
  EXPECT_TRUE(d.accept(kEos));  // ignore_eos goes on with EOS
}

TEST(TokenConstraint, TheTriggerStartsTheGrammarWhetherOneTokenOrSeveral) {
  // As one token.
  TokenConstraint one(compile("x+"), "</think>");
  EXPECT_FALSE(one.active());
  for (char ch : std::string("any </thin")) EXPECT_TRUE(one.accept(static_cast<unsigned char>(ch)));
  EXPECT_FALSE(one.active());
  EXPECT_TRUE(one.accept(kThink));
  EXPECT_TRUE(one.active());
  std::vector<uint32_t> w(one.mask_words());
  EXPECT_EQ(one.fill_mask(w.data()), 1u);
  EXPECT_TRUE(bit(w, 'x'));
  // Byte by byte, across tokens.
  TokenConstraint bytes(compile("x+"), "</think>");
  for (char ch : std::string("hmm </think")) EXPECT_TRUE(bytes.accept(static_cast<unsigned char>(ch)));
  EXPECT_FALSE(bytes.active());
  EXPECT_TRUE(bytes.accept('>'));
  EXPECT_TRUE(bytes.active());
  EXPECT_FALSE(bytes.accept('y'));
}

TEST(TokenConstraint, AfterTheEndOnlyEos) {
  TokenConstraint c(compile("ab"));
  ASSERT_TRUE(c.accept(kAb));
  ASSERT_TRUE(c.accept(kEos));
  std::vector<uint32_t> w(c.mask_words());
  EXPECT_EQ(c.fill_mask(w.data()), 1u);  // EOS only
  EXPECT_FALSE(c.accept('a'));
}

TEST(StepMasks, WorkersGiveTheSameMasksAsOneThread) {
  const auto g = compile("[a-z]{1,8}(,[0-9]+)*");
  std::mt19937_64 rng(3);
  std::vector<std::unique_ptr<TokenConstraint>> cs, ref;
  for (int i = 0; i < 40; ++i) {
    cs.push_back(std::make_unique<TokenConstraint>(g));
    ref.push_back(std::make_unique<TokenConstraint>(g));
    // Different states: a few letters, maybe a comma and digits.
    std::string s(1 + rng() % 5, 'k');
    if (i % 3 == 0) s += ",12";
    for (char ch : s) {
      ASSERT_TRUE(cs.back()->accept(static_cast<unsigned char>(ch)));
      ASSERT_TRUE(ref.back()->accept(static_cast<unsigned char>(ch)));
    }
  }
  std::vector<TokenConstraint*> rows;
  for (int i = 0; i < 40; ++i) rows.push_back(i % 4 == 1 ? nullptr : cs[static_cast<size_t>(i)].get());
  const size_t words = cs[0]->mask_words() + 1;  // a wider row than the vocabulary: zero-filled
  StepMasks masks(3);
  for (int step = 0; step < 3; ++step) {
    masks.start(rows, words, nullptr);
    masks.wait();
    ASSERT_EQ(masks.masked_rows().size(), 30u);
    EXPECT_TRUE(masks.dead_ends().empty());
    for (size_t k = 0; k < masks.masked_rows().size(); ++k) {
      const int32_t r = masks.masked_rows()[k];
      std::vector<uint32_t> expect(words, 0u);
      ref[static_cast<size_t>(r)]->fill_mask(expect.data());
      EXPECT_EQ(std::vector<uint32_t>(masks.masks() + k * words, masks.masks() + (k + 1) * words), expect) << r;
    }
  }
  EXPECT_EQ(masks.stats().steps, 3);
  EXPECT_EQ(masks.stats().rows, 90);
}

TEST(StepMasks, DeadEndRowsAreReportedAndLeftUnmasked) {
  TokenConstraint done(compile("ab"));
  ASSERT_TRUE(done.accept(kAb));  // complete: EOS is its one token
  // A dead end: after "a" the grammar wants a byte no token of this vocabulary spells.
  std::vector<std::string> toks = {"a", "b", "<eos>"};
  auto small = *grammar::TokenVocabulary::create(toks, {2}, {});
  grammar::GrammarCompiler compiler(small);
  auto g = compiler.compile(grammar::GrammarSpec::regex("a[^ab]"));
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  TokenConstraint stuck(*g);
  ASSERT_TRUE(stuck.accept(0));
  std::vector<TokenConstraint*> rows = {&done, &stuck};
  StepMasks masks(1);
  masks.start(rows, done.mask_words(), nullptr);
  masks.wait();
  ASSERT_EQ(masks.dead_ends().size(), 1u);
  EXPECT_EQ(masks.dead_ends()[0], 1);
  EXPECT_FALSE(stuck.error().empty());
  for (size_t i = 0; i < done.mask_words(); ++i) EXPECT_EQ(masks.masks()[done.mask_words() + i], ~0u);
}

}  // namespace
}  // namespace kr
