// plan_output and grammar_error: every bad constraint is a 400 with its code
// and a message naming the problem; tools and reasoning make the right plan.
#include "server/structured_output.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "grammar/matcher.h"
#include "server/choice_output.h"

namespace kr {
namespace {

// A byte vocabulary with "</think>" and EOS (id 257).
StructuredOutputConfig config() {
  std::vector<std::string> toks;
  for (int b = 0; b < 256; ++b) toks.push_back(std::string(1, static_cast<char>(b)));
  toks.push_back("</think>");
  toks.push_back("<eos>");
  StructuredOutputConfig c;
  c.compiler = std::make_shared<grammar::GrammarCompiler>(*grammar::TokenVocabulary::create(toks, {257}, {}));
  return c;
}

OpenAIRequest with(grammar::GrammarSpec spec, bool chat = true) {
  OpenAIRequest r;
  r.chat = chat;
  r.constraint = OutputConstraint{std::move(spec), "response_format"};
  return r;
}

ApiError plan_error(const StructuredOutputConfig& c, const OpenAIRequest& r) {
  OutputPlan plan;
  ApiError e;
  EXPECT_FALSE(plan_output(c, r, "", &plan, &e));
  EXPECT_EQ(e.http_status, 400);
  return e;
}

TEST(StructuredOutput, CompileErrorsAre400sWithCodes) {
  const StructuredOutputConfig c = config();
  using grammar::GrammarSpec;
  struct Case {
    GrammarSpec spec;
    std::string code;
    std::string in_message;
  };
  std::string deep = R"({"type":"integer"})";
  for (int i = 0; i < 70; ++i) deep = R"({"type":"array","items":)" + deep + "}";
  std::string big = R"({"type":"object","properties":{)";
  for (int i = 0; i < 12000; ++i) {
    if (i > 0) big += ',';
    big += "\"property_";
    big += std::to_string(i);
    big += "\":{\"type\":\"string\"}";
  }
  big += "}}";
  const Case cases[] = {
      {GrammarSpec::json_schema(R"({"type":5})"), "invalid_json_schema", ""},
      {GrammarSpec::json_schema("{not json"), "invalid_json_schema", "not valid JSON"},
      {GrammarSpec::json_schema(R"({"type":"object","patternProperties":{"^x":{}}})"),
       "unsupported_json_schema_keyword", "patternProperties"},
      {GrammarSpec::json_schema(R"({"type":"string","format":"ipv7"})"), "unsupported_json_schema_keyword", "ipv7"},
      {GrammarSpec::json_schema(R"({"type":"integer","minimum":5,"maximum":1})"), "grammar_accepts_nothing", ""},
      {GrammarSpec::json_schema(deep), "grammar_too_large", "too deeply"},
      {GrammarSpec::json_schema(big), "grammar_too_large", "too large"},
      {GrammarSpec::regex("(ab"), "invalid_regex", ""},
      {GrammarSpec::regex("(?<=a)b"), "invalid_regex", "not supported"},
      {GrammarSpec::gbnf("root ::= ("), "invalid_grammar", ""},
      {GrammarSpec::gbnf("rot ::= \"a\""), "invalid_grammar", "root"},
      {GrammarSpec::gbnf("root ::= root \"a\" | \"b\""), "invalid_grammar", "left recursion"},
      {GrammarSpec::gbnf("root ::= root \"a\""), "grammar_accepts_nothing", "accepts no"},
      {GrammarSpec::gbnf("root ::= \"a\" root"), "grammar_accepts_nothing", ""},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.spec.source.substr(0, 80));
    const ApiError e = plan_error(c, with(k.spec));
    EXPECT_EQ(e.code, k.code) << e.message;
    EXPECT_EQ(e.param, "response_format");
    EXPECT_NE(e.message.find(k.in_message), std::string::npos) << e.message;
  }
}

TEST(StructuredOutput, AGrammarNoTokenCanStartIsRefused) {
  std::vector<std::string> toks = {"a", "b", "<eos>"};
  StructuredOutputConfig c;
  c.compiler = std::make_shared<grammar::GrammarCompiler>(*grammar::TokenVocabulary::create(toks, {2}, {}));
  const ApiError e = plan_error(c, with(grammar::GrammarSpec::regex("[xyz]+")));
  EXPECT_EQ(e.code, "grammar_accepts_nothing");
  OutputPlan plan;
  ApiError none;
  EXPECT_TRUE(plan_output(c, with(grammar::GrammarSpec::regex("a+b")), "", &plan, &none)) << none.message;
  EXPECT_NE(plan.grammar, nullptr);
}

const char* kToolsJson =
    R"([{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}])";

TEST(StructuredOutput, ToolChoicePlans) {
  StructuredOutputConfig c = config();
  OpenAIRequest r;
  r.chat = true;
  r.tools_json = kToolsJson;
  r.tool_names = {"get_weather"};
  r.tool_choice = ToolChoice::kAuto;
  OutputPlan plan;
  ApiError e;
  // No format known for this model: tools are refused with a clear code.
  EXPECT_FALSE(plan_output(c, r, "", &plan, &e));
  EXPECT_EQ(e.code, "tool_calls_unsupported");
  c.tool_format = ToolCallFormat::kHermes;
  ASSERT_TRUE(plan_output(c, r, "", &plan, &e)) << e.message;
  EXPECT_EQ(plan.grammar, nullptr);  // auto: free output, parsed
  EXPECT_EQ(plan.tool_calls, ToolCallFormat::kHermes);
  r.tool_choice = ToolChoice::kFunction;
  r.tool_choice_function = "get_weather";
  ASSERT_TRUE(plan_output(c, r, "", &plan, &e)) << e.message;
  ASSERT_NE(plan.grammar, nullptr);
  grammar::GrammarMatcher m(plan.grammar);
  EXPECT_TRUE(m.accept_bytes("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>"));
  EXPECT_TRUE(m.can_terminate());
  r.tool_choice = ToolChoice::kNone;  // not parsed, not constrained
  ASSERT_TRUE(plan_output(c, r, "", &plan, &e));
  EXPECT_FALSE(plan.tool_calls.has_value());
  // A parameters schema the compiler refuses: a 400 naming the keyword.
  r.tool_choice = ToolChoice::kRequired;
  r.tools_json = R"([{"type":"function","function":{"name":"f","parameters":{"type":"object","patternProperties":{}}}}])";
  EXPECT_FALSE(plan_output(c, r, "", &plan, &e));
  EXPECT_EQ(e.code, "unsupported_json_schema_keyword");
  EXPECT_NE(e.message.find("patternProperties"), std::string::npos);
}

TEST(StructuredOutput, WithAReasoningParserTheGrammarWaitsForTheEndOfThinking) {
  StructuredOutputConfig c = config();
  c.reasoning = ReasoningParserKind::kQwen3;
  OpenAIRequest r = with(grammar::GrammarSpec::regex("[0-9]+"));
  OutputPlan plan;
  ApiError e;
  ASSERT_TRUE(plan_output(c, r, "<|im_start|>assistant\n", &plan, &e));
  EXPECT_EQ(plan.grammar_trigger, "</think>");
  EXPECT_EQ(plan.reasoning, ReasoningParserKind::kQwen3);
  // The prompt closed the block (enable_thinking false): the grammar applies at once.
  ASSERT_TRUE(plan_output(c, r, "<|im_start|>assistant\n<think>\n\n</think>\n\n", &plan, &e));
  EXPECT_EQ(plan.grammar_trigger, "");
  EXPECT_EQ(plan.reasoning_start, ReasoningStart::kInContent);
  // Completions have no reasoning parser.
  ASSERT_TRUE(plan_output(c, with(grammar::GrammarSpec::regex("[0-9]+"), false), "", &plan, &e));
  EXPECT_EQ(plan.reasoning, ReasoningParserKind::kNone);
  EXPECT_EQ(plan.grammar_trigger, "");
}

TEST(ChoiceOutput, StreamedAndWholeAgreeOnReasoningContentAndToolCalls) {
  OutputPlan plan;
  plan.reasoning = ReasoningParserKind::kQwen3;
  plan.tool_calls = ToolCallFormat::kHermes;
  const std::string text =
      "<think>Need the weather.</think>\n\nLet me check.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
      "{\"city\": \"Oslo\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
      "\"Rome\"}}\n</tool_call>";
  ChoiceOutput whole_out(plan);
  const ChoiceOutput::Whole w = whole_out.whole(text);
  EXPECT_EQ(w.reasoning, std::optional<std::string>("Need the weather."));
  EXPECT_EQ(w.content, "\n\nLet me check.");
  ASSERT_EQ(w.calls.size(), 2u);
  EXPECT_EQ(w.calls[0].name, "get_weather");
  EXPECT_EQ(w.calls[0].arguments, "{\"city\": \"Oslo\"}");
  EXPECT_EQ(w.calls[0].id.rfind("call_", 0), 0u);
  EXPECT_EQ(w.calls[0].id.size(), 29u);
  EXPECT_NE(w.calls[0].id, w.calls[1].id);
  for (size_t piece : {1u, 3u, 7u}) {
    ChoiceOutput s(plan);
    std::string reasoning, content;
    std::vector<std::string> names, args, ids;
    auto take = [&](const ChoiceOutput::Delta& d) {
      reasoning += d.reasoning;
      content += d.content;
      for (const ToolCallDelta& c : d.calls) {
        if (c.opens) {
          ASSERT_EQ(c.index, names.size());
          names.push_back(c.name);
          ids.push_back(c.id);
          args.push_back("");
        }
        args[c.index] += c.arguments;
      }
    };
    for (size_t i = 0; i < text.size(); i += piece) take(s.push(text.substr(i, piece)));
    take(s.finish());
    EXPECT_EQ(reasoning, *w.reasoning);
    EXPECT_EQ(content, w.content);
    EXPECT_EQ(names, (std::vector<std::string>{"get_weather", "get_weather"}));
    EXPECT_EQ(args, (std::vector<std::string>{w.calls[0].arguments, w.calls[1].arguments}));
    EXPECT_EQ(s.num_calls(), 2u);
    for (const std::string& id : ids) EXPECT_EQ(id.rfind("call_", 0), 0u);
  }
  // A think block cut off by max_tokens: all of it is reasoning.
  const ChoiceOutput::Whole cut = ChoiceOutput(plan).whole("<think>still thinking about");
  EXPECT_EQ(cut.reasoning, std::optional<std::string>("still thinking about"));
  EXPECT_EQ(cut.content, "");
  EXPECT_TRUE(cut.calls.empty());
}

}  // namespace
}  // namespace kr
