// JSON Schema compiler: errors that name the problem, limits, whitespace
// bounds, property-key handling, and numeric ranges checked number by number
// against exact decimal comparison.
#include "grammar/json_schema.h"

#include <gtest/gtest.h>

#include <random>

#include "grammar/grammar_compiler.h"
#include "grammar/matcher.h"
#include "grammar/number_ranges.h"

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

std::shared_ptr<const CompiledGrammar> schema(const std::string& s) {
  GrammarCompiler c(byte_vocab());
  auto g = c.compile(GrammarSpec::json_schema(s));
  EXPECT_TRUE(g.ok()) << s << ": " << g.status().to_string();
  return g.ok() ? *g : nullptr;
}

bool accepts(const std::shared_ptr<const CompiledGrammar>& g, std::string_view text) {
  GrammarMatcher m(g);
  return m.accept_bytes(text) && m.can_terminate();
}

TEST(JsonSchema, ErrorsNameTheProblem) {
  struct Bad {
    std::string schema;
    const char* message;
  };
  const Bad cases[] = {
      {R"({"type":"object","patternProperties":{"^x":{}}})", "unsupported JSON Schema keyword 'patternProperties'"},
      {R"({"properties":{"a":{"not":{"type":"string"}}}})", "'not' at /properties/a"},
      {R"({"if":{},"then":{}})", "keyword 'if'"},
      {R"({"oneOf":[{"type":"string"},{"type":"string","maxLength":3}]})", "oneOf"},
      {R"({"$ref":"other.json#/x"})", "only local $ref"},
      {R"({"$ref":"#/$defs/missing"})", "does not resolve"},
      {R"({"$ref":"#anchor"})", "anchors are not supported"},
      {R"({"type":"string","format":"ipv7"})", "unsupported string format 'ipv7'"},
      {R"({"type":"integer","multipleOf":3})", "multipleOf"},
      {R"({"type":"array","uniqueItems":true})", "uniqueItems"},
      {R"({"type":"object","properties":{"a":{}},"minProperties":2})", "minProperties"},
      {R"({"enum":[1,2],"type":"string"})", "no value of enum/const"},
      {R"(false)", "accepts no value"},
      {R"({"type":"object","properties":{"a":{}},"required":["b"],"additionalProperties":false})", "required property 'b'"},
      {R"({"allOf":[{"minLength":1},{"pattern":"a"},{"pattern":"b"}]})", "allOf with two different 'pattern'"},
      {R"({"type":"strin"})", "unsupported type 'strin'"},
      {R"J({"type":"string","pattern":"(?=x)"})J", "lookaround"},
      {R"({"type":"string","minLength":5,"maxLength":2})", "maxLength is below minLength"},
      {R"({"type":"array","minItems":3,"items":false})", "no array satisfies"},
      {R"({"type":"object",)", "not valid JSON"},
      {R"({"allOf":[{"properties":{"a":{}},"required":["a"],"additionalProperties":false},{"properties":{"b":{}},"required":["b"]}]})",
       "excluded by additionalProperties:false"},
  };
  GrammarCompiler c(byte_vocab());
  for (const Bad& b : cases) {
    auto g = c.compile(GrammarSpec::json_schema(b.schema));
    ASSERT_FALSE(g.ok()) << b.schema;
    EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument) << b.schema;
    EXPECT_NE(g.status().message().find(b.message), std::string::npos) << b.schema << " -> " << g.status().message();
  }
}

TEST(JsonSchema, Limits) {
  std::string deep = "{}";
  for (int i = 0; i < 70; ++i) deep = R"({"type":"array","items":)" + deep + "}";
  auto d = compile_json_schema(deep);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("nests too deeply"), std::string::npos);
  std::string big = R"({"enum":[")" + std::string(300 * 1024, 'x') + R"("]})";
  auto b = compile_json_schema(big);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("too large"), std::string::npos);
  // Recursion through $ref is fine (it is not nesting of the document).
  EXPECT_TRUE(compile_json_schema(R"({"type":"array","items":{"$ref":"#"}})").ok());
}

TEST(JsonSchema, WhitespaceIsBounded) {
  auto g = schema(R"({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]})");
  EXPECT_TRUE(accepts(g, "{\"a\":1}"));
  EXPECT_TRUE(accepts(g, "{ \"a\": 1 }"));
  EXPECT_TRUE(accepts(g, "{\n  \"a\": 1\n}"));
  EXPECT_TRUE(accepts(g, "{\n" + std::string(20, ' ') + "\"a\":1}"));
  EXPECT_FALSE(accepts(g, "{\n" + std::string(21, ' ') + "\"a\":1}"));
  EXPECT_FALSE(accepts(g, "{\n\n\"a\":1}"));
  EXPECT_FALSE(accepts(g, "{  \"a\":1}"));
  EXPECT_FALSE(accepts(g, " {\"a\":1}"));
  EXPECT_FALSE(accepts(g, "{\"a\":1} "));
  EXPECT_FALSE(accepts(g, "{\"a\" :1}"));
  JsonSchemaOptions compact;
  compact.whitespace = false;
  auto gc = compile_json_schema(R"({"type":"array","items":{"type":"integer"}})", compact);
  ASSERT_TRUE(gc.ok());
  auto pda = build_pda(*gc);
  ASSERT_TRUE(pda.ok());
  auto cg = *CompiledGrammar::create(*pda, byte_vocab());
  EXPECT_TRUE(accepts(cg, "[1,2]"));
  EXPECT_FALSE(accepts(cg, "[1, 2]"));
}

TEST(JsonSchema, PropertiesKeysAndOrder) {
  auto g = schema(R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"}},
                      "required":["b"],"additionalProperties":{"type":"boolean"}})");
  EXPECT_TRUE(accepts(g, R"({"b":"x"})"));
  EXPECT_TRUE(accepts(g, R"({"a":1,"b":"x"})"));
  EXPECT_TRUE(accepts(g, R"({"a":1,"b":"x","c":true,"d":false})"));
  EXPECT_FALSE(accepts(g, R"({"b":"x","a":1})"));          // declared keys come in schema order
  EXPECT_FALSE(accepts(g, R"({"a":1,"b":"x","a":true})"));  // an extra key never repeats a declared one
  EXPECT_FALSE(accepts(g, R"({"a":1,"b":"x","c":1})"));
  EXPECT_FALSE(accepts(g, R"({"a":1})"));
  // Property names are JSON-escaped.
  auto e = schema(R"({"type":"object","properties":{"quo\"te":{"const":1},"é":{"const":2}},"required":["quo\"te","é"]})");
  EXPECT_TRUE(accepts(e, "{\"quo\\\"te\":1,\"\xC3\xA9\":2}"));
}

TEST(JsonSchema, StringsAndFormats) {
  auto g = schema(R"({"type":"string","minLength":2,"maxLength":3})");
  EXPECT_TRUE(accepts(g, "\"ab\""));
  EXPECT_TRUE(accepts(g, "\"\\n\\\"x\""));       // escapes count as one character
  EXPECT_TRUE(accepts(g, "\"\xE6\x97\xA5\xE6\x9C\xAC\""));  // two characters, six bytes
  EXPECT_FALSE(accepts(g, "\"a\""));
  EXPECT_FALSE(accepts(g, "\"abcd\""));
  EXPECT_FALSE(accepts(g, "\"a\xE6\x97\""));      // invalid UTF-8
  EXPECT_FALSE(accepts(g, "\"\\u0041b\""));       // \u escapes are never generated
  auto d = schema(R"({"type":"string","format":"date"})");
  EXPECT_TRUE(accepts(d, "\"2024-02-29\""));
  EXPECT_TRUE(accepts(d, "\"2000-02-29\""));
  EXPECT_FALSE(accepts(d, "\"1900-02-29\""));
  EXPECT_FALSE(accepts(d, "\"2023-02-29\""));
  EXPECT_FALSE(accepts(d, "\"2023-04-31\""));
  EXPECT_FALSE(accepts(d, "\"0000-01-01\""));
}

// Every integer in a window, checked against the range.
TEST(NumberRanges, IntegersExhaustive) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 60; ++trial) {
    int lo = static_cast<int>(rng() % 2000) - 1000, hi = lo + static_cast<int>(rng() % 1500);
    bool lo_ex = rng() % 2, hi_ex = rng() % 2, has_lo = rng() % 5 != 0, has_hi = rng() % 5 != 0;
    std::string s = R"({"type":"integer")";
    if (has_lo) s += std::string(",\"") + (lo_ex ? "exclusiveMinimum" : "minimum") + "\":" + std::to_string(lo);
    if (has_hi) s += std::string(",\"") + (hi_ex ? "exclusiveMaximum" : "maximum") + "\":" + std::to_string(hi);
    s += "}";
    auto g = schema(s);
    ASSERT_TRUE(g) << s;
    for (int x = -1200; x <= 2700; ++x) {
      bool in = (!has_lo || (lo_ex ? x > lo : x >= lo)) && (!has_hi || (hi_ex ? x < hi : x <= hi));
      ASSERT_EQ(accepts(g, std::to_string(x)), in) << s << " x=" << x;
    }
    if (has_lo || has_hi) {
      EXPECT_FALSE(accepts(g, "-0"));  // ranges never write -0 (plain integers may)
    }
    EXPECT_FALSE(accepts(g, "01"));
  }
}

// Decimals with up to 3 fraction digits in a window, checked exactly.
TEST(NumberRanges, DecimalsExhaustive) {
  std::mt19937 rng(4);
  const char* bounds[] = {"0", "1", "-1", "0.5", "-0.5", "2.25", "-2.125", "10", "0.001", "-3", "3.999"};
  for (int trial = 0; trial < 40; ++trial) {
    std::string lo = bounds[rng() % std::size(bounds)], hi = bounds[rng() % std::size(bounds)];
    bool lo_ex = rng() % 2, hi_ex = rng() % 2, has_lo = rng() % 6 != 0, has_hi = rng() % 6 != 0;
    std::string s = R"({"type":"number")";
    if (has_lo) s += std::string(",\"") + (lo_ex ? "exclusiveMinimum" : "minimum") + "\":" + lo;
    if (has_hi) s += std::string(",\"") + (hi_ex ? "exclusiveMaximum" : "maximum") + "\":" + hi;
    s += "}";
    GrammarCompiler c(byte_vocab());
    auto g = c.compile(GrammarSpec::json_schema(s));
    const Decimal dlo = *Decimal::parse(lo), dhi = *Decimal::parse(hi);
    bool empty = has_lo && has_hi && (compare(dlo, dhi) > 0 || (compare(dlo, dhi) == 0 && (lo_ex || hi_ex)));
    if (empty) {
      EXPECT_FALSE(g.ok()) << s;
      continue;
    }
    ASSERT_TRUE(g.ok()) << s << ": " << g.status().message();
    for (int v = -5000; v <= 5000; ++v) {
      for (int digits = 0; digits <= 3; ++digits) {
        // v / 10^3 written with `digits` fraction digits (skip unrepresentable).
        if (digits < 3 && v % (digits == 0 ? 1000 : digits == 1 ? 100 : 10) != 0) continue;
        std::string text = (v < 0 ? "-" : "");
        int a = std::abs(v);
        text += std::to_string(a / 1000);
        if (digits > 0) {
          char frac[8];
          std::snprintf(frac, sizeof frac, "%03d", a % 1000);
          text += '.';
          text.append(frac, static_cast<size_t>(digits));
        }
        if (text == "-0" || text.rfind("-0.", 0) == 0) {
          bool all_zero = text.find_first_not_of("-0.") == std::string::npos;
          if (all_zero) continue;  // -0 and -0.0: not generated (a subset), not checked
        }
        const Decimal x = *Decimal::parse(text);
        bool in = (!has_lo || (lo_ex ? compare(x, dlo) > 0 : compare(x, dlo) >= 0)) &&
                  (!has_hi || (hi_ex ? compare(x, dhi) < 0 : compare(x, dhi) <= 0));
        ASSERT_EQ(accepts(*g, text), in) << s << " x=" << text;
      }
    }
  }
}

TEST(JsonSchema, FreeJson) {
  GrammarCompiler c(byte_vocab());
  auto g = *c.compile(GrammarSpec::json_object());
  EXPECT_TRUE(accepts(g, R"({"a":[1,-2.5e3,"x",true,false,null,{"b":{}}],"c":[]})"));
  EXPECT_FALSE(accepts(g, "[1]"));
  EXPECT_FALSE(accepts(g, R"({"a":1,})"));
  EXPECT_FALSE(accepts(g, R"({"a":NaN})"));
  auto any = schema("{}");
  EXPECT_TRUE(accepts(any, "[1]"));
  EXPECT_TRUE(accepts(any, "\"s\""));
  EXPECT_TRUE(accepts(any, "null"));
}

}  // namespace
}  // namespace kr::grammar
