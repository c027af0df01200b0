// GBNF: llama.cpp's example grammars (testdata/gbnf) parse, compile and
// constrain; random walks over the Llama-3 vocabulary end in text that an
// independent check accepts (nlohmann for JSON, std::regex for the regular
// ones); syntax errors are reported with their position.
#include "grammar/gbnf_parser.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "grammar/grammar_compiler.h"
#include "grammar/matcher.h"
#include "grammar/random_walk_for_test.h"
#include "grammar/vocab_for_test.h"

namespace kr::grammar {
namespace {

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(KR_SOURCE_DIR) + "/src/grammar/testdata/gbnf/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::shared_ptr<const TokenVocabulary> llama3() {
  static auto v = *load_vocabulary(std::string(KR_SOURCE_DIR) + "/models/tiny-llama3/tokenizer.json",
                                   {"<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"});
  return v;
}

std::shared_ptr<const CompiledGrammar> compile_gbnf(const std::string& text) {
  GrammarCompiler c(llama3());
  auto g = c.compile(GrammarSpec::gbnf(text));
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  return g.ok() ? *g : nullptr;
}

bool full_match(const std::shared_ptr<const CompiledGrammar>& g, std::string_view text) {
  GrammarMatcher m(g);
  return m.accept_bytes(text) && m.can_terminate();
}

TEST(Gbnf, LlamaCppExamplesCompile) {
  for (const char* f : {"json.gbnf", "json_arr.gbnf", "arithmetic.gbnf", "list.gbnf", "chess.gbnf", "c.gbnf",
                        "english.gbnf", "japanese.gbnf"}) {
    SCOPED_TRACE(f);
    std::string text = fixture(f);
    ASSERT_FALSE(text.empty());
    auto g = parse_gbnf(text);
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    EXPECT_NE(compile_gbnf(text), nullptr);
  }
}

TEST(Gbnf, JsonExampleAcceptsAndRejects) {
  auto g = compile_gbnf(fixture("json.gbnf"));
  EXPECT_TRUE(full_match(g, R"({"a": [1, 2.5, true, null, {"b": "x\n\u00e9"}]})"));
  EXPECT_TRUE(full_match(g, "{}"));
  EXPECT_FALSE(full_match(g, "[1]"));  // root is an object
  EXPECT_FALSE(full_match(g, R"({"a": 01})"));
  EXPECT_FALSE(full_match(g, R"({"a" 1})"));
  EXPECT_FALSE(full_match(g, R"({"a": "x)"));
}

TEST(Gbnf, ArithmeticListChess) {
  auto arith = compile_gbnf(fixture("arithmetic.gbnf"));
  // (In this grammar a term never starts with a space, and the right-hand side is one term.)
  EXPECT_TRUE(full_match(arith, "x1+y*2 = (a +2*b)\n"));
  EXPECT_TRUE(full_match(arith, "1=2\n3 = (4 /y)\n"));
  EXPECT_FALSE(full_match(arith, "x1 = (a +2*b\n"));
  EXPECT_FALSE(full_match(arith, "x1 = a + 2\n"));
  EXPECT_FALSE(full_match(arith, "= 2\n"));
  auto list = compile_gbnf(fixture("list.gbnf"));
  EXPECT_TRUE(full_match(list, "- milk\n- eggs and bread\n"));
  EXPECT_FALSE(full_match(list, "- milk\n-eggs\n"));
  EXPECT_FALSE(full_match(list, "- \n"));
  auto chess = compile_gbnf(fixture("chess.gbnf"));
  EXPECT_TRUE(full_match(chess, "1. e4 e5\n2. Nf3 Nc6\n3. O-O Qxd8+\n"));
  EXPECT_FALSE(full_match(chess, "1. e4 e5\n"));  // at least one numbered move after the first
  EXPECT_FALSE(full_match(chess, "1. e9 e5\n2. Nf3 Nc6\n"));
  auto japanese = compile_gbnf(fixture("japanese.gbnf"));
  EXPECT_TRUE(full_match(japanese, "こんにちは 世界"));
  EXPECT_FALSE(full_match(japanese, "hello"));
}

// Random walks: text the grammar produced, judged by something else.
std::vector<std::string> walks(const std::shared_ptr<const CompiledGrammar>& g, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const WalkTokenClasses classes = WalkTokenClasses::for_vocab(g->vocab());
  std::vector<std::string> out;
  WalkOptions o;
  o.max_tokens = 400;
  o.soft_max_tokens = 120;
  for (int i = 0; i < n; ++i) {
    WalkResult r = random_walk(g, classes, rng, o);
    EXPECT_FALSE(r.mask_error) << r.text;
    if (r.finished) out.push_back(r.text);
  }
  return out;
}

TEST(Gbnf, RandomWalksProduceWhatTheGrammarDescribes) {
  auto json = compile_gbnf(fixture("json.gbnf"));
  auto docs = walks(json, 8, 1);
  EXPECT_GE(docs.size(), 4u);
  for (const auto& d : docs) {
    auto v = nlohmann::json::parse(d, nullptr, false);
    EXPECT_FALSE(v.is_discarded()) << d;
    EXPECT_TRUE(v.is_object()) << d;
  }
  struct Regular {
    const char* file;
    const char* ecma;  // the same language, written for std::regex
  };
  const Regular cases[] = {
      {"list.gbnf", "(- [^\\r\\n\\x0b\\x0c]+\\n)+"},
      {"chess.gbnf",
       "1\\. M M\\n([1-9][0-9]?\\. M M\\n)+"},
  };
  for (const Regular& c : cases) {
    SCOPED_TRACE(c.file);
    std::string pattern = c.ecma;
    const std::string move =
        "(([a-h]x)?[a-h][1-8](=[NBKQR])?|[NBKQR][a-h]?[1-8]?x?[a-h][1-8]|O-O(-O)?)[+#]?";
    for (size_t p; (p = pattern.find('M')) != std::string::npos;) pattern.replace(p, 1, move);
    std::regex re(pattern);
    auto g = compile_gbnf(fixture(c.file));
    auto out = walks(g, 8, 2);
    EXPECT_GE(out.size(), 2u);
    for (const auto& t : out) EXPECT_TRUE(std::regex_match(t, re)) << t;
  }
}

TEST(Gbnf, SyntaxAndFeatures) {
  auto g = compile_gbnf("root ::= [a-c]{2,3} \"-\" x{2} ( \"y\" | \"z\" )* .\nx ::= [\\x30-\\x39]\n");
  EXPECT_TRUE(full_match(g, "ab-12yzy!"));
  EXPECT_TRUE(full_match(g, "abc-99\xC3\xA9"));  // `.` is any code point
  EXPECT_FALSE(full_match(g, "a-12!"));
  // Comments, line continuation after `|`, CRLF, names with digits and _.
  auto h = compile_gbnf("# comment\r\nroot ::= a_1 |\r\n  \"b\" # trailing\r\na_1 ::= \"a\"\r\n");
  EXPECT_TRUE(full_match(h, "a"));
  EXPECT_TRUE(full_match(h, "b"));
  // Negated classes and escapes.
  auto k = compile_gbnf("root ::= [^\"\\\\\\n]+ \"\\\"\"\n");
  EXPECT_TRUE(full_match(k, "abc\""));
  EXPECT_FALSE(full_match(k, "a\\b\""));
}

TEST(Gbnf, ErrorsNameThePlace) {
  struct Bad {
    const char* text;
    const char* message;
  };
  const Bad cases[] = {
      {"root ::= \"a\" undefined-rule\n", "undefined rule 'undefined-rule'"},
      {"item ::= \"a\"\n", "no 'root' rule"},
      {"root ::= \"a\"\nroot ::= \"b\"\n", "defined twice"},
      {"root ::= (\"a\"\n", "line 2"},
      {"root ::= \"a\n", "unterminated string"},
      {"root ::= [abc\n", "unterminated character class"},
      {"root ::= * \"a\"\n", "must follow an item"},
      {"root ::= \"a\"{3,1}\n", "below its minimum"},
      {"root ::= \"a\"{99999999}\n", "repetition count above"},
      {"root ::= \"\\q\"\n", "unknown escape"},
      {"root ::= !<[12]>\n", "negated token terminals"},
      {"root = \"a\"\n", "expecting '::='"},
      {"root ::= [z-a]\n", "reversed"},
  };
  for (const Bad& b : cases) {
    auto g = parse_gbnf(b.text);
    if (g.ok()) {
      auto pda = build_pda(*g);
      ASSERT_FALSE(pda.ok()) << b.text;
      EXPECT_NE(pda.status().message().find(b.message), std::string::npos) << pda.status().message();
      continue;
    }
    EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(g.status().message().find(b.message), std::string::npos) << b.text << " -> " << g.status().message();
  }
  GbnfLimits small;
  small.max_bytes = 16;
  EXPECT_FALSE(parse_gbnf("root ::= \"aaaaaaaaaaaaaaaaaaaa\"\n", small).ok());
  small = GbnfLimits();
  small.max_nesting = 3;
  EXPECT_FALSE(parse_gbnf("root ::= ((((\"a\"))))\n", small).ok());
}

TEST(Gbnf, TokenTerminals) {
  // Special tokens as terminals, by text and by id; as bytes they never match.
  std::vector<std::string> toks;
  for (int b = 0; b < 256; ++b) toks.push_back(std::string(1, static_cast<char>(b)));
  toks.push_back("<|python_tag|>");  // 256
  toks.push_back("<|eot_id|>");      // 257
  auto v = TokenVocabulary::create(toks, {257}, {256});
  ASSERT_TRUE(v.ok());
  GrammarCompiler c(*v);
  for (const char* text : {"root ::= <|python_tag|> \"x\"\n", "root ::= <[256]> \"x\"\n"}) {
    auto g = c.compile(GrammarSpec::gbnf(text));
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    GrammarMatcher m(*g);
    std::vector<uint32_t> bits((*v)->mask_words());
    EXPECT_EQ(m.fill_mask(bits.data()), 1u);
    EXPECT_TRUE((bits[256 >> 5] >> (256 & 31)) & 1);
    EXPECT_FALSE(m.accept_bytes("<|python_tag|>"));  // the text is not the token
    EXPECT_TRUE(m.accept_token(256));
    EXPECT_TRUE(m.accept_token('x'));
    EXPECT_TRUE(m.accept_token(257));
    EXPECT_TRUE(m.is_finished());
  }
  // One token named twice (by id and by text) in different places.
  auto twice = c.compile(GrammarSpec::gbnf("root ::= \"a\" <[256]> | \"b\" <|python_tag|>\n"));
  ASSERT_TRUE(twice.ok());
  for (const char* first : {"a", "b"}) {
    GrammarMatcher m(*twice);
    ASSERT_TRUE(m.accept_bytes(first));
    EXPECT_TRUE(m.accept_token(256)) << first;
  }
  auto missing = c.compile(GrammarSpec::gbnf("root ::= <|nope|>\n"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("<|nope|>"), std::string::npos);
}

}  // namespace
}  // namespace kr::grammar
