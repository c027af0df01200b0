#include "server/tool_call_parser.h"

#include <gtest/gtest.h>

#include <random>

#include <nlohmann/json.hpp>

#include "grammar/matcher.h"
#include "grammar/random_walk_for_test.h"
#include "grammar/vocab_for_test.h"

namespace kr {
namespace {

TEST(ToolCallParser, Llama3Json) {
  auto r = parse_tool_calls(ToolCallFormat::kLlama3Json, R"({"name": "get_weather", "parameters": {"city": "Paris"}})");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].name, "get_weather");
  EXPECT_EQ(r.calls[0].arguments, R"({"city": "Paris"})");
  EXPECT_EQ(r.content, "");
  r = parse_tool_calls(ToolCallFormat::kLlama3Json,
                       "<|python_tag|>{\"name\": \"a\", \"arguments\": {}}; {\"name\": \"b\", \"parameters\": {\"x\": [1, 2]}}");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0].name, "a");
  EXPECT_EQ(r.calls[0].arguments, "{}");
  EXPECT_EQ(r.calls[1].arguments, R"({"x": [1, 2]})");
  // Plain answers, including JSON that is not a call.
  r = parse_tool_calls(ToolCallFormat::kLlama3Json, "The weather is fine.");
  EXPECT_TRUE(r.calls.empty());
  EXPECT_EQ(r.content, "The weather is fine.");
  r = parse_tool_calls(ToolCallFormat::kLlama3Json, R"({"name": "Ann", "age": 3})");
  EXPECT_TRUE(r.calls.empty());
  EXPECT_EQ(r.content, R"({"name": "Ann", "age": 3})");
  // Arguments given as a JSON string are decoded.
  r = parse_tool_calls(ToolCallFormat::kLlama3Json, R"({"name": "f", "arguments": "{\"q\": \"\u00e9\"}"})");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].arguments, "{\"q\": \"\xC3\xA9\"}");
}

TEST(ToolCallParser, Hermes) {
  const char* text =
      "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"
      "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\"}}\n</tool_call>";
  auto r = parse_tool_calls(ToolCallFormat::kHermes, text);
  EXPECT_EQ(r.content, "Let me check.");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0].name, "get_weather");
  EXPECT_EQ(r.calls[0].arguments, R"({"city": "Paris"})");
  EXPECT_EQ(r.calls[1].name, "get_time");
  // No calls: all content (a tag-like text that never completes stays content).
  r = parse_tool_calls(ToolCallFormat::kHermes, "Use <tool_ for tools.");
  EXPECT_TRUE(r.calls.empty());
  EXPECT_EQ(r.content, "Use <tool_ for tools.");
  // Arguments before the name; a call cut off by max_tokens keeps what came.
  r = parse_tool_calls(ToolCallFormat::kHermes, "<tool_call>{\"arguments\": {\"a\": 1}, \"name\": \"f\"}</tool_call>");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].arguments, R"({"a": 1})");
  r = parse_tool_calls(ToolCallFormat::kHermes, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": [1, 2");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].arguments, R"({"a": [1, 2)");
  // Missing arguments: {}.
  r = parse_tool_calls(ToolCallFormat::kHermes, "<tool_call>\n{\"name\": \"ping\"}\n</tool_call>");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].arguments, "{}");
}

TEST(ToolCallParser, Mistral) {
  auto r = parse_tool_calls(ToolCallFormat::kMistral,
                            "Sure.[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": 1}, \"id\": \"abc123XYZ\"}, "
                            "{\"id\": \"def456UVW\", \"name\": \"g\", \"arguments\": {}}]");
  EXPECT_EQ(r.content, "Sure.");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0].name, "f");
  EXPECT_EQ(r.calls[0].arguments, R"({"a": 1})");
  EXPECT_EQ(r.calls[1].id, "def456UVW");  // the id came before the name
  // The newer form: [TOOL_CALLS]name[ARGS]{...}, repeated.
  r = parse_tool_calls(ToolCallFormat::kMistral, "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Rome\"}[TOOL_CALLS]g[ARGS]{}");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0].name, "get_weather");
  EXPECT_EQ(r.calls[0].arguments, R"({"city": "Rome"})");
  EXPECT_EQ(r.calls[1].name, "g");
  EXPECT_EQ(r.content, "");
}

TEST(ToolCallParser, DetectFormat) {
  EXPECT_EQ(detect_tool_call_format("{% for tool in tools %}<tool_call>{{ tool }}</tool_call>"), ToolCallFormat::kHermes);
  EXPECT_EQ(detect_tool_call_format("[AVAILABLE_TOOLS]...[TOOL_CALLS]"), ToolCallFormat::kMistral);
  EXPECT_EQ(detect_tool_call_format("<|start_header_id|>ipython<|end_header_id|> <|python_tag|>"),
            ToolCallFormat::kLlama3Json);
  EXPECT_FALSE(detect_tool_call_format("{{ messages }}").has_value());
}

// Streaming in random pieces gives exactly the non-streamed parse.
TEST(ToolCallParser, StreamingEqualsWholeParse) {
  struct Case {
    ToolCallFormat format;
    std::string text;
  };
  const Case cases[] = {
      {ToolCallFormat::kLlama3Json, R"({"name": "get_weather", "parameters": {"city": "Paris", "days": [1, 2]}})"},
      {ToolCallFormat::kLlama3Json, "  <|python_tag|>{\"name\": \"a\", \"parameters\": {\"s\": \"x\\\"y\"}};{\"name\": \"b\", \"arguments\": \"{\\\"k\\\": 1}\"}"},
      {ToolCallFormat::kLlama3Json, "Hello {not a call} there"},
      {ToolCallFormat::kLlama3Json, R"({"name": "Ann", "age": 3})"},
      {ToolCallFormat::kHermes,
       "Thinking...\n\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"q\": \"<tool_call>\"}}\n</tool_call>\n\n"
       "<tool_call>\n{\"arguments\": {}, \"name\": \"g\"}\n</tool_call>\nDone.  "},
      {ToolCallFormat::kHermes, "no tools here <tool_ at all </tool_call>"},
      {ToolCallFormat::kMistral, "x [TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {\"a\": \"]\"}}, {\"name\": \"g\", \"arguments\": {}}]"},
      {ToolCallFormat::kMistral, "[TOOL_CALLS]f[ARGS]{\"a\": {\"b\": 2}}"},
  };
  std::mt19937 rng(1);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    const ToolCallParse whole = parse_tool_calls(c.format, c.text);
    for (int trial = 0; trial < 200; ++trial) {
      ToolCallStreamParser p(c.format);
      ToolCallParse got;
      size_t next_index = 0;
      auto take = [&](ToolCallStreamDelta d) {
        got.content += d.content;
        for (ToolCallDelta& x : d.calls) {
          if (x.opens) {
            ASSERT_EQ(x.index, next_index++);
            ASSERT_FALSE(x.name.empty());
            got.calls.push_back({x.id, x.name, ""});
          }
          ASSERT_LT(x.index, got.calls.size());
          got.calls[x.index].arguments += x.arguments;
        }
      };
      for (size_t i = 0; i < c.text.size();) {
        size_t n = 1 + rng() % 7;
        take(p.push(std::string_view(c.text).substr(i, n)));
        i += n;
      }
      take(p.finish());
      ASSERT_EQ(got.content, whole.content);
      ASSERT_EQ(got.calls.size(), whole.calls.size());
      for (size_t k = 0; k < got.calls.size(); ++k) {
        EXPECT_EQ(got.calls[k].name, whole.calls[k].name);
        EXPECT_EQ(got.calls[k].arguments, whole.calls[k].arguments);
      }
      EXPECT_EQ(p.num_calls(), whole.calls.size());
    }
  }
}

const char* kTools = R"([
  {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
   "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20},
                  "unit": {"enum": ["c", "f"]}}, "required": ["city", "unit"], "additionalProperties": false}}},
  {"type": "function", "function": {"name": "search", "parameters": {"type": "object",
   "$defs": {"q": {"type": "string", "minLength": 1}},
   "properties": {"query": {"$ref": "#/$defs/q"}, "top_k": {"type": "integer", "minimum": 1, "maximum": 5}},
   "required": ["query"], "additionalProperties": false}}},
  {"type": "function", "function": {"name": "ping"}}
])";

TEST(ToolCallGrammar, ForcesAValidCallInEachFormat) {
  auto vocab = *grammar::load_vocabulary(std::string(KR_SOURCE_DIR) + "/models/tiny-llama3/tokenizer.json",
                                         {"<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"});
  grammar::GrammarCompiler compiler(vocab);
  const auto classes = grammar::WalkTokenClasses::for_vocab(*vocab);
  std::mt19937_64 rng(3);
  const auto tools = nlohmann::json::parse(kTools);
  for (ToolCallFormat f : {ToolCallFormat::kLlama3Json, ToolCallFormat::kHermes, ToolCallFormat::kMistral}) {
    for (std::string fn : {"", "search"}) {
      SCOPED_TRACE(std::string(tool_call_format_name(f)) + " function='" + fn + "'");
      auto spec = build_tool_call_grammar(f, kTools, fn, true);
      ASSERT_TRUE(spec.ok()) << spec.status().to_string();
      auto g = compiler.compile(*spec);
      ASSERT_TRUE(g.ok()) << g.status().to_string() << "\n" << spec->source;
      int finished = 0;
      for (int i = 0; i < 6; ++i) {
        grammar::WalkResult w = grammar::random_walk(*g, classes, rng);
        ASSERT_FALSE(w.mask_error);
        if (!w.finished) continue;
        ++finished;
        ToolCallParse r = parse_tool_calls(f, w.text);
        ASSERT_GE(r.calls.size(), 1u) << w.text;
        if (f == ToolCallFormat::kLlama3Json) {
          EXPECT_EQ(r.calls.size(), 1u);
        }
        EXPECT_EQ(r.content, "") << w.text;
        for (const ToolCall& c : r.calls) {
          if (!fn.empty()) {
            EXPECT_EQ(c.name, fn);
          }
          auto args = nlohmann::json::parse(c.arguments, nullptr, false);
          ASSERT_FALSE(args.is_discarded()) << c.arguments;
          ASSERT_TRUE(args.is_object());
          if (c.name == "get_weather") {
            EXPECT_TRUE(args.contains("city") && args.contains("unit")) << c.arguments;
          } else if (c.name == "search") {
            ASSERT_TRUE(args.contains("query")) << c.arguments;
            EXPECT_GE(args["query"].get<std::string>().size(), 1u);
          } else {
            EXPECT_EQ(c.name, "ping");
          }
        }
      }
      EXPECT_GE(finished, 3);
    }
  }
  // Hand-written checks: the Hermes grammar with one named function.
  auto spec = build_tool_call_grammar(ToolCallFormat::kHermes, kTools, "get_weather", false);
  auto g = *compiler.compile(*spec);
  auto accepts = [&](const std::string& t) {
    grammar::GrammarMatcher m(g);
    return m.accept_bytes(t) && m.can_terminate();
  };
  EXPECT_TRUE(accepts("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"unit\": \"c\"}}\n</tool_call>"));
  EXPECT_FALSE(accepts("<tool_call>\n{\"name\": \"search\", \"arguments\": {\"query\": \"x\"}}\n</tool_call>"));
  EXPECT_FALSE(accepts("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>"));
  EXPECT_FALSE(accepts("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"unit\": \"c\"}}\n</tool_call>\n<tool_call>"));
}

TEST(ToolCallGrammar, MistralControlToken) {
  std::vector<std::string> toks;
  for (int b = 0; b < 256; ++b) toks.push_back(std::string(1, static_cast<char>(b)));
  toks.push_back("[TOOL_CALLS]");  // 256, a control token
  toks.push_back("</s>");          // 257
  auto vocab = *grammar::TokenVocabulary::create(toks, {257}, {256});
  grammar::GrammarCompiler compiler(vocab);
  auto spec = build_tool_call_grammar(ToolCallFormat::kMistral, kTools, "ping", false, 256);
  ASSERT_TRUE(spec.ok());
  auto g = compiler.compile(*spec);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  grammar::GrammarMatcher m(*g);
  EXPECT_FALSE(m.accept_bytes("[TOOL_CALLS]"));  // the text is not the control token
  ASSERT_TRUE(m.accept_token(256));
  ASSERT_TRUE(m.accept_bytes("[{\"name\": \"ping\", \"arguments\": {}}]"));
  EXPECT_TRUE(m.accept_token(257));
}

TEST(ToolCallGrammar, Errors) {
  auto e = build_tool_call_grammar(ToolCallFormat::kHermes, kTools, "nope", true);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("'nope', which is not in 'tools'"), std::string::npos);
  EXPECT_FALSE(build_tool_call_grammar(ToolCallFormat::kHermes, "{}", "", true).ok());
  EXPECT_FALSE(build_tool_call_grammar(ToolCallFormat::kHermes, "[{\"type\":\"function\"}]", "", true).ok());
  EXPECT_FALSE(build_tool_call_grammar(ToolCallFormat::kHermes, "[]", "", true).ok());
  // A parameters schema the grammar compiler refuses: the error names the rule and keyword.
  auto spec = build_tool_call_grammar(
      ToolCallFormat::kHermes,
      R"([{"type":"function","function":{"name":"f","parameters":{"type":"object","patternProperties":{}}}}])", "", true);
  ASSERT_TRUE(spec.ok());
  std::vector<std::string> toks;
  for (int b = 0; b < 256; ++b) toks.push_back(std::string(1, static_cast<char>(b)));
  grammar::GrammarCompiler c(*grammar::TokenVocabulary::create(toks, {}));
  auto g = c.compile(*spec);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("patternProperties"), std::string::npos) << g.status().message();
}

}  // namespace
}  // namespace kr
