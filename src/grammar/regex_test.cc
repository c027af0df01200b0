// Regex front end: full-match results agree with std::regex (ECMAScript) on
// random strings; JSON-string/search mode (JSON Schema `pattern`) emits
// escaped text whose decoded value contains a match; unsupported constructs
// are errors that name them.
#include "grammar/regex_parser.h"

#include <gtest/gtest.h>

#include <random>
#include <regex>

#include <nlohmann/json.hpp>

#include "grammar/grammar_compiler.h"
#include "grammar/matcher.h"
#include "grammar/random_walk_for_test.h"
#include "grammar/vocab_for_test.h"

namespace kr::grammar {
namespace {

std::shared_ptr<const TokenVocabulary> byte_vocab() {
  static auto v = [] {
    std::vector<std::string> toks{""};
    for (int b = 0; b < 256; ++b) toks.push_back(std::string(1, static_cast<char>(b)));
    return *TokenVocabulary::create(toks, {0});
  }();
  return v;
}

bool full_match(const std::shared_ptr<const CompiledGrammar>& g, std::string_view text) {
  GrammarMatcher m(g);
  return m.accept_bytes(text) && m.can_terminate();
}

TEST(Regex, AgreesWithStdRegexOnRandomStrings) {
  const char* patterns[] = {
      "a|b",
      "ab*c",
      "(ab)+|c?",
      "[a-c]{2,4}",
      "x{3}",
      "x{2,}y",
      "[^ab]+",
      "\\d{1,3}(\\.\\d{1,3}){3}",
      "\\w+@\\w+\\.(com|org)",
      "\\s*[A-Z][a-z]*\\s*",
      "(a|ab)(c|bcd)(d*)",
      "[\\d\\-+]{0,5}",
      "\\(\\)|\\[\\]|\\{\\}",
      "[-a]+b",
      "a.c",
      "(?:ab|cd)*?e",
      "[\\w.]+",
      "\\D\\W\\S",
      "((a|b)*c){2}",
      "^a+$",
      "a{0}b",
  };
  const std::string alphabet = "abcdexyABCZ0129.-+()[]{}@ \t\n_!";
  std::mt19937 rng(5);
  GrammarCompiler c(byte_vocab());
  for (const char* p : patterns) {
    SCOPED_TRACE(p);
    std::regex re(p, std::regex::ECMAScript);
    auto g = c.compile(GrammarSpec::regex(p));
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    for (int i = 0; i < 3000; ++i) {
      std::string s;
      size_t len = rng() % 9;
      for (size_t k = 0; k < len; ++k) s.push_back(alphabet[rng() % alphabet.size()]);
      ASSERT_EQ(full_match(*g, s), std::regex_match(s, re)) << "'" << s << "'";
    }
  }
}

TEST(Regex, RandomWalksMatch) {
  auto vocab = *load_vocabulary(std::string(KR_SOURCE_DIR) + "/models/tiny-llama3/tokenizer.json", {"<|eot_id|>"});
  GrammarCompiler c(vocab);
  const WalkTokenClasses classes = WalkTokenClasses::for_vocab(*vocab);
  std::mt19937_64 rng(9);
  // Bounded repetitions: std::regex (the oracle) recurses per character and
  // overflows the stack on long texts under AddressSanitizer.
  for (const char* p : {"[A-Z][a-z]{1,12} (is|was) [0-9]{1,4} (years|days) old\\.", "(\\+|-)?\\d{1,12}(\\.\\d{1,6})?",
                        "[a-z0-9._%+-]{1,16}@[a-z0-9.-]{1,16}\\.[a-z]{2,4}", "(yes|no|maybe)"}) {
    SCOPED_TRACE(p);
    auto g = c.compile(GrammarSpec::regex(p));
    ASSERT_TRUE(g.ok());
    std::regex re(p);
    for (int i = 0; i < 5; ++i) {
      WalkResult w = random_walk(*g, classes, rng);
      ASSERT_FALSE(w.mask_error);
      ASSERT_TRUE(w.finished) << w.text;
      EXPECT_TRUE(std::regex_match(w.text, re)) << w.text;
    }
  }
}

TEST(Regex, JsonStringSearchMode) {
  // As a JSON Schema pattern: the text is a JSON string body, escaped, and the
  // decoded value must contain a match unless anchored.
  struct Case {
    const char* pattern;
    std::vector<std::string> json_bodies_ok;   // accepted (as written inside quotes)
    std::vector<std::string> json_bodies_bad;  // rejected
  };
  const Case cases[] = {
      {"^a\"b$", {"a\\\"b"}, {"a\"b", "xa\\\"b"}},
      {"x\\\\y", {"x\\\\y", "123x\\\\y456"}, {"x\\y"}},
      {"^line\\nbreak$", {"line\\nbreak"}, {"line\nbreak"}},
      {"TODO", {"TODO", "a TODO b"}, {"todo"}},
      {"^\\d+$|^none$", {"42", "none"}, {"4 2", "nonex"}},
      {"[\\u00e9]", {"\xC3\xA9"}, {"e"}},
  };
  GrammarCompiler c(byte_vocab());
  for (const Case& k : cases) {
    SCOPED_TRACE(k.pattern);
    Grammar g;
    uint32_t root = g.add_rule("root");
    g.set_root(root);
    RegexOptions o;
    o.json_string = true;
    o.search = true;
    auto e = compile_regex(g, k.pattern, o);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    g.set_rule_body(root, *e);
    auto pda = build_pda(g);
    ASSERT_TRUE(pda.ok());
    auto cg = CompiledGrammar::create(*pda, byte_vocab());
    ASSERT_TRUE(cg.ok());
    for (const auto& s : k.json_bodies_ok) EXPECT_TRUE(full_match(*cg, s)) << s;
    for (const auto& s : k.json_bodies_bad) EXPECT_FALSE(full_match(*cg, s)) << s;
  }
}

TEST(Regex, UnsupportedConstructsAreNamed) {
  struct Bad {
    const char* pattern;
    const char* message;
  };
  const Bad cases[] = {
      {"(?=a)b", "lookaround"},     {"(?<!a)b", "lookaround"},   {"(a)\\1", "backreference"},
      {"\\bword", "word boundary"}, {"(?i)abc", "inline flags"}, {"a++", "possessive"},
      {"\\p{L}", "Unicode property"}, {"[[:alpha:]]", "POSIX"},  {"a^b", "start anchor"},
      {"a$b", "end anchor"},        {"(a", "missing ')'"},       {"a)", "unbalanced"},
      {"*a", "nothing to repeat"},  {"a{5,2}", "below its minimum"}, {"a{100001}", "repetition count"},
      {"[b-a]", "bad character range"}, {"\\", "ends with"},     {"\\q", "escape \\q"},
      {"[]a]", "ambiguous"},
  };
  for (const Bad& b : cases) {
    Grammar g;
    auto e = compile_regex(g, b.pattern);
    ASSERT_FALSE(e.ok()) << b.pattern;
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(e.status().message().find(b.message), std::string::npos) << b.pattern << " -> " << e.status().message();
  }
}

TEST(Choices, ExactlyOneOfThem) {
  GrammarCompiler c(byte_vocab());
  auto g = c.compile(GrammarSpec::choices_of({"yes", "no", "not sure", "n"}));
  ASSERT_TRUE(g.ok());
  for (const char* s : {"yes", "no", "not sure", "n"}) EXPECT_TRUE(full_match(*g, s)) << s;
  for (const char* s : {"", "ye", "yes ", "nope", "not"}) EXPECT_FALSE(full_match(*g, s)) << s;
  EXPECT_FALSE(c.compile(GrammarSpec::choices_of({})).ok());
}

}  // namespace
}  // namespace kr::grammar
