#include "grammar/matcher.h"

#include <gtest/gtest.h>

#include <random>

#include "grammar/grammar_compiler.h"
#include "grammar/vocab_for_test.h"

namespace kr::grammar {
namespace {

// A small vocabulary: every single byte, some multi-byte pieces, EOS (id 0).
std::shared_ptr<const TokenVocabulary> small_vocab() {
  static std::shared_ptr<const TokenVocabulary> v = [] {
    std::vector<std::string> toks{""};
    for (int b = 0; b < 256; ++b) toks.push_back(std::string(1, static_cast<char>(b)));
    for (const char* t : {"ab", "abc", "{\"", "\":", "\",", "\"}", "true", "null", "12", ", ", "  ", "\n  ", "}]",
                          "]}", "cd", "\"a", "a\"", "xyz"}) {
      toks.push_back(t);
    }
    auto r = TokenVocabulary::create(toks, {0});
    EXPECT_TRUE(r.ok());
    return *r;
  }();
  return v;
}

std::shared_ptr<const TokenVocabulary> llama3_vocab() {
  static std::shared_ptr<const TokenVocabulary> v = [] {
    auto r = load_vocabulary(std::string(KR_SOURCE_DIR) + "/models/tiny-llama3/tokenizer.json",
                             {"<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"});
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return *r;
  }();
  return v;
}

std::shared_ptr<const CompiledGrammar> compile(const GrammarSpec& spec, std::shared_ptr<const TokenVocabulary> v) {
  GrammarCompiler c(v);
  auto g = c.compile(spec);
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  return g.ok() ? *g : nullptr;
}

bool full_match(const std::shared_ptr<const CompiledGrammar>& g, std::string_view text) {
  GrammarMatcher m(g);
  return m.accept_bytes(text) && m.can_terminate();
}

GrammarSpec gbnf(std::string s) { return GrammarSpec::gbnf(std::move(s)); }

TEST(GrammarMatcher, GbnfAcceptsAndRejects) {
  auto g = compile(gbnf("root ::= \"a\" [b-d]+ (\"x\" | \"yz\")?\n"), small_vocab());
  EXPECT_TRUE(full_match(g, "ab"));
  EXPECT_TRUE(full_match(g, "abcdx"));
  EXPECT_TRUE(full_match(g, "adyz"));
  EXPECT_FALSE(full_match(g, "a"));
  EXPECT_FALSE(full_match(g, "ae"));
  EXPECT_FALSE(full_match(g, "abyzx"));
  GrammarMatcher m(g);
  EXPECT_TRUE(m.accept_bytes("a"));
  EXPECT_FALSE(m.accept_bytes("e"));  // rejected, state unchanged
  EXPECT_TRUE(m.accept_bytes("b"));
  EXPECT_TRUE(m.can_terminate());
}

TEST(GrammarMatcher, RecursiveRulesAndCalls) {
  auto g = compile(gbnf("root ::= list\nlist ::= \"[\" (item (\",\" item)*)? \"]\"\nitem ::= [0-9]+ | list\n"),
                   small_vocab());
  EXPECT_TRUE(full_match(g, "[]"));
  EXPECT_TRUE(full_match(g, "[1,[2,[]],33]"));
  EXPECT_FALSE(full_match(g, "[1,]"));
  EXPECT_FALSE(full_match(g, "[[1]"));
}

TEST(GrammarMatcher, EosOnlyWhereTheGrammarCanEnd) {
  auto g = compile(gbnf("root ::= \"ab\" \"c\"?\n"), small_vocab());
  GrammarMatcher m(g);
  std::vector<uint32_t> bits(small_vocab()->mask_words());
  m.fill_mask(bits.data());
  EXPECT_FALSE(bits[0] & 1);  // EOS not allowed at the start
  EXPECT_FALSE(m.accept_token(0));
  ASSERT_TRUE(m.accept_bytes("ab"));
  m.fill_mask(bits.data());
  EXPECT_TRUE(bits[0] & 1);
  EXPECT_TRUE(m.accept_token(0));
  EXPECT_TRUE(m.is_finished());
  EXPECT_FALSE(m.accept_bytes("c"));
}

TEST(GrammarMatcher, RollbackRestoresState) {
  auto g = compile(gbnf("root ::= \"abc\" | \"abd\"\n"), small_vocab());
  GrammarMatcher m(g);
  auto id_of = [&](const std::string& s) {
    for (size_t i = 0; i < small_vocab()->size(); ++i) {
      if (small_vocab()->token(static_cast<int32_t>(i)) == s) return static_cast<int32_t>(i);
    }
    return -1;
  };
  ASSERT_TRUE(m.accept_token(id_of("ab")));
  ASSERT_TRUE(m.accept_token(id_of("c")));
  EXPECT_TRUE(m.can_terminate());
  ASSERT_TRUE(m.rollback(1));
  EXPECT_FALSE(m.can_terminate());
  EXPECT_TRUE(m.accept_token(id_of("d")));
  EXPECT_TRUE(m.can_terminate());
  EXPECT_FALSE(m.rollback(5));
}

TEST(GrammarMatcher, TooAmbiguousFailsTheSequenceClearly) {
  // After n "a"s there are 2^n parses (each level owes an "x" or a "y").
  auto g = compile(gbnf("root ::= s\ns ::= p \"x\" | q \"y\" | \"c\"\np ::= \"a\" s\nq ::= \"a\" s\n"),
                   small_vocab());
  MatcherOptions o;
  o.max_stacks = 16;
  GrammarMatcher m(g, o);
  bool failed = false;
  for (int i = 0; i < 40 && !failed; ++i) failed = !m.accept_bytes("a");
  EXPECT_TRUE(failed);
  EXPECT_NE(m.error().find("too ambiguous"), std::string::npos);
  // The sequence can still be completed.
  EXPECT_TRUE(m.accept_bytes("c"));
  EXPECT_FALSE(m.can_terminate());
  // Within the limit the same grammar works.
  GrammarMatcher ok(g);
  EXPECT_TRUE(ok.accept_bytes("aaacxyy"));
  EXPECT_TRUE(ok.can_terminate());
}

TEST(GrammarMatcher, AfterEosOnlyEos) {
  auto g = compile(gbnf("root ::= \"ab\"\n"), small_vocab());
  GrammarMatcher m(g);
  ASSERT_TRUE(m.accept_bytes("ab"));
  ASSERT_TRUE(m.accept_token(0));
  std::vector<uint32_t> bits(small_vocab()->mask_words());
  EXPECT_EQ(m.fill_mask(bits.data()), 1u);
  EXPECT_TRUE(bits[0] & 1);
  ASSERT_TRUE(m.rollback(1));
  EXPECT_FALSE(m.is_finished());
  EXPECT_TRUE(m.accept_token(0));
}

TEST(GrammarMatcher, LeftRecursionIsAnError) {
  GrammarCompiler c(small_vocab());
  auto g = c.compile(gbnf("root ::= expr\nexpr ::= expr \"+\" [0-9] | [0-9]\n"));
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("left recursion"), std::string::npos) << g.status().message();
}

TEST(GrammarMatcher, EmptyLanguageIsAnError) {
  GrammarCompiler c(small_vocab());
  auto g = c.compile(gbnf("root ::= a\na ::= \"x\" a\n"));
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("accepts no output"), std::string::npos) << g.status().message();
}

// The mask must equal "accept_token succeeds", token by token.
void expect_mask_matches_brute_force(const std::shared_ptr<const CompiledGrammar>& g, GrammarMatcher& m) {
  const auto& v = g->vocab();
  std::vector<uint32_t> bits(v.mask_words());
  size_t count = m.fill_mask(bits.data());
  size_t brute = 0;
  for (size_t id = 0; id < v.size(); ++id) {
    bool in_mask = (bits[id >> 5] >> (id & 31)) & 1;
    bool accepted = m.accept_token(static_cast<int32_t>(id));
    if (accepted) {
      ++brute;
      ASSERT_TRUE(m.rollback(1));
    }
    ASSERT_EQ(in_mask, accepted) << "token " << id << " '" << v.token(static_cast<int32_t>(id)) << "'";
  }
  EXPECT_EQ(count, brute);
}

TEST(GrammarMatcher, MaskEqualsBruteForceOnLlama3Vocab) {
  auto v = llama3_vocab();
  struct Case {
    GrammarSpec spec;
    std::vector<std::string> prefixes;
  };
  std::vector<Case> cases = {
      {GrammarSpec::json_object(), {"", "{", "{\"a", "{\"a\":", "{\"a\": [1, {\"b\"", "{\"a\": \"x\\", "{\"k\": 12"}},
      {gbnf("root ::= (\"yes\" | \"no\") \" \" [a-z]+ \".\"\n"), {"", "y", "no ", "no ab"}},
      {GrammarSpec::regex("[0-9]{3}-[A-Z]{2,4}(x|yz)?"), {"", "12", "123-", "123-AB", "123-ABCD"}},
      {GrammarSpec::json_schema(
        R"({"type":"object","properties":{"name":{"type":"string","maxLength":5},"tags":{"type":"array","items":{"enum":["a","bc"]}}},"required":["name"]})"),
       {"", "{\"name\": \"ab", "{\"name\": \"abcde", "{\"name\": \"x\", \"tags\": [\"a\""}},
  };
  for (auto& c : cases) {
    auto g = compile(c.spec, v);
    ASSERT_TRUE(g);
    for (const auto& p : c.prefixes) {
      GrammarMatcher m(g);
      ASSERT_TRUE(m.accept_bytes(p)) << p;
      SCOPED_TRACE(std::string(grammar_kind_name(c.spec.kind)) + " after '" + p + "'");
      expect_mask_matches_brute_force(g, m);
    }
  }
}

TEST(GrammarMatcher, RandomWalkMasksStayConsistent) {
  // Random walks on the real vocabulary; at a few steps, compare with brute force.
  auto v = llama3_vocab();
  auto g = compile(GrammarSpec::json_object(), v);
  std::mt19937 rng(7);
  std::vector<uint32_t> bits(v->mask_words());
  for (int walk = 0; walk < 3; ++walk) {
    GrammarMatcher m(g);
    for (int step = 0; step < 40 && !m.is_finished(); ++step) {
      size_t n = m.fill_mask(bits.data());
      ASSERT_GT(n, 0u);
      if (step % 13 == 5) expect_mask_matches_brute_force(g, m);
      std::vector<int32_t> allowed;
      for (size_t id = 0; id < v->size(); ++id) {
        if ((bits[id >> 5] >> (id & 31)) & 1) allowed.push_back(static_cast<int32_t>(id));
      }
      ASSERT_EQ(allowed.size(), n);
      // Prefer structure over string bodies to keep walks short.
      int32_t pick = allowed[rng() % allowed.size()];
      ASSERT_TRUE(m.accept_token(pick));
    }
  }
}

}  // namespace
}  // namespace kr::grammar
