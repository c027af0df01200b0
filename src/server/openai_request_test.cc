#include "server/openai_request.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace kr {
namespace {

OpenAIRequest ok_chat(const std::string& body) {
  OpenAIRequest r;
  ApiError e;
  EXPECT_TRUE(parse_openai_request(body, true, RequestLimits{}, &r, &e)) << body << " -> " << e.message;
  return r;
}

ApiError bad(const std::string& body, bool chat = true) {
  OpenAIRequest r;
  ApiError e;
  RequestLimits lim;
  lim.vocab_size = 1000;
  EXPECT_FALSE(parse_openai_request(body, chat, lim, &r, &e)) << body;
  EXPECT_EQ(e.http_status, 400);
  return e;
}

TEST(OpenAIRequest, ChatFieldsAreParsed) {
  OpenAIRequest r = ok_chat(R"({"model":"m","messages":[{"role":"system","content":"s"},
      {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
      "max_tokens":5,"max_completion_tokens":7,"temperature":0,"top_p":0.5,"top_k":3,"min_p":0.1,
      "presence_penalty":-1,"frequency_penalty":1.5,"repetition_penalty":1.1,"seed":42,"n":2,
      "stop":"END","stream":true,"stream_options":{"include_usage":true},"logprobs":true,"top_logprobs":3,
      "ignore_eos":true,"min_tokens":2,"priority":"urgent","user":"u","return_tokens_as_token_ids":true,
      "some_unknown_field":{"x":1}})");
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(*r.messages[1].content, "a\nb");
  EXPECT_EQ(*r.max_tokens, 7);
  EXPECT_EQ(r.sampling.temperature, 0.0f);
  EXPECT_EQ(r.sampling.top_k, 3);
  EXPECT_FLOAT_EQ(r.sampling.presence_penalty, -1.0f);
  EXPECT_EQ(*r.sampling.seed, 42u);
  EXPECT_EQ(r.n, 2);
  EXPECT_EQ(r.stop, std::vector<std::string>{"END"});
  EXPECT_TRUE(r.stream && r.include_usage && r.ignore_eos && r.return_tokens_as_token_ids);
  EXPECT_EQ(r.sampling.logprobs, 3);
  EXPECT_EQ(r.min_tokens, 2);
  EXPECT_EQ(r.priority, -1);
}

TEST(OpenAIRequest, NullsMeanDefaults) {
  OpenAIRequest r = ok_chat(R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":null,"stop":null,"temperature":null})");
  EXPECT_FALSE(r.max_tokens.has_value());
  EXPECT_TRUE(r.stop.empty());
  EXPECT_EQ(r.sampling.logprobs, -1);
}

TEST(OpenAIRequest, CompletionPrompts) {
  OpenAIRequest r;
  ApiError e;
  ASSERT_TRUE(parse_openai_request(R"({"prompt":[1,2,3],"logprobs":2})", false, {}, &r, &e));
  EXPECT_EQ(*r.prompt_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(r.sampling.logprobs, 2);
  ASSERT_TRUE(parse_openai_request(R"({"prompt":["text"]})", false, {}, &r, &e));
  EXPECT_EQ(*r.prompt_text, "text");
  ASSERT_TRUE(parse_openai_request(R"({"prompt":[[5,6]]})", false, {}, &r, &e));
  EXPECT_EQ(*r.prompt_ids, (std::vector<int32_t>{5, 6}));
}

TEST(OpenAIRequest, ErrorsNameTheParameter) {
  EXPECT_EQ(bad(R"({"messages":[{"role":"user","content":"hi"}],"temperature":"hot"})").param, "temperature");
  EXPECT_EQ(bad(R"({"messages":[{"role":"user","content":"hi"}],"temperature":3})").param, "temperature");
  EXPECT_EQ(bad(R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":0})").param, "max_tokens");
  EXPECT_EQ(bad(R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":1.5})").param, "max_tokens");
  EXPECT_EQ(bad(R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":true})").param, "max_tokens");
  EXPECT_EQ(bad(R"({"messages":[{"role":"user","content":"hi"}],"n":0})").param, "n");
  EXPECT_EQ(bad(R"({"messages":[{"role":"user","content":"hi"}],"top_p":0})").param, "top_p");
  EXPECT_EQ(bad(R"({"messages":[{"role":"user","content":"hi"}],"stop":[1]})").param, "stop");
  EXPECT_EQ(bad(R"({"messages":[{"role":"user","content":"hi"}],"top_logprobs":50,"logprobs":true})").param, "top_logprobs");
  EXPECT_EQ(bad(R"({"messages":[{"role":"user","content":"hi"}],"stream":"yes"})").param, "stream");
  EXPECT_EQ(bad(R"({"messages":[{"role":"user","content":"hi"}],"priority":"asap"})").param, "priority");
  EXPECT_EQ(bad(R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"min_tokens":3})").param, "min_tokens");
  EXPECT_EQ(bad(R"({"messages":[]})").param, "messages");
  EXPECT_EQ(bad(R"({"messages":[{"role":"wizard","content":"x"}]})").param, "messages[0].role");
  EXPECT_EQ(bad(R"({"messages":[{"role":"user","content":5}]})").param, "messages[0].content");
  EXPECT_EQ(bad(R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})").param, "messages[0].content[0].type");
  EXPECT_EQ(bad(R"({"prompt":[1,5000]})", false).param, "prompt");
  EXPECT_EQ(bad(R"({"prompt":[]})", false).param, "prompt");
  EXPECT_EQ(bad(R"({"prompt":[1,"a"]})", false).param, "prompt");
  EXPECT_EQ(bad(R"({"max_tokens":2})", false).param, "prompt");
}

TEST(OpenAIRequest, CacheSalt) {
  OpenAIRequest r;
  ApiError e;
  ASSERT_TRUE(parse_openai_request(R"({"prompt":"x","cache_salt":"tenant-7"})", false, {}, &r, &e));
  EXPECT_EQ(r.cache_salt, "tenant-7");
  const std::string max_salt(256, 's');
  ASSERT_TRUE(parse_openai_request(R"({"prompt":"x","cache_salt":")" + max_salt + R"("})", false, {}, &r, &e));
  EXPECT_EQ(r.cache_salt.size(), 256u);
  EXPECT_EQ(bad(R"({"prompt":"x","cache_salt":")" + max_salt + R"(s"})", false).param, "cache_salt");
  EXPECT_EQ(bad(R"({"messages":[{"role":"user","content":"hi"}],"cache_salt":7})").param, "cache_salt");
  EXPECT_EQ(bad(R"({"messages":[{"role":"user","content":"hi"}],"cache_salt":["a"]})").param, "cache_salt");
}

// Every numeric parameter at the edges of its range: the last accepted value
// reaches SamplingParams, the first refused one names the parameter.
TEST(OpenAIRequest, RangesAtTheirEdges) {
  const auto with = [](const std::string& field, const std::string& value) {
    const std::string max = field == "max_tokens" ? "" : R"("max_tokens":8,)";
    return R"({"messages":[{"role":"user","content":"hi"}],)" + max + "\"" + field + "\":" + value + "}";
  };
  struct Edge {
    const char* field;
    std::vector<const char*> ok, refused;
  };
  const Edge edges[] = {
      {"temperature", {"0", "2"}, {"-0.001", "2.001"}},
      {"top_p", {"0.000001", "1"}, {"0", "-0.1", "1.0001"}},
      {"top_k", {"-1", "0", "1"}, {"-2"}},
      {"min_p", {"0", "1"}, {"-0.001", "1.001"}},
      {"presence_penalty", {"-2", "2"}, {"-2.001", "2.001"}},
      {"frequency_penalty", {"-2", "2"}, {"-2.001", "2.001"}},
      {"repetition_penalty", {"0.001", "2"}, {"0", "2.001"}},
      {"n", {"1", "16"}, {"0", "17"}},
      {"min_tokens", {"0", "8"}, {"-1", "9"}},
      {"max_tokens", {"1"}, {"0", "-1"}},
  };
  for (const Edge& e : edges) {
    for (const char* v : e.ok) {
      OpenAIRequest r = ok_chat(with(e.field, v));
      const double want = std::stod(v);
      const std::string f = e.field;
      if (f == "temperature") {
        EXPECT_FLOAT_EQ(r.sampling.temperature, want);
      }
      if (f == "top_p") {
        EXPECT_FLOAT_EQ(r.sampling.top_p, want);
      }
      if (f == "top_k") {
        EXPECT_EQ(r.sampling.top_k, want);
      }
      if (f == "min_p") {
        EXPECT_FLOAT_EQ(r.sampling.min_p, want);
      }
      if (f == "presence_penalty") {
        EXPECT_FLOAT_EQ(r.sampling.presence_penalty, want);
      }
      if (f == "frequency_penalty") {
        EXPECT_FLOAT_EQ(r.sampling.frequency_penalty, want);
      }
      if (f == "repetition_penalty") {
        EXPECT_FLOAT_EQ(r.sampling.repetition_penalty, want);
      }
      if (f == "min_tokens") {
        EXPECT_EQ(r.min_tokens, want);
      }
      if (f == "max_tokens") {
        EXPECT_EQ(r.max_tokens, want);
      }
    }
    for (const char* v : e.refused) EXPECT_EQ(bad(with(e.field, v)).param, e.field) << e.field << " = " << v;
  }
  // top_logprobs: 0..20 with logprobs: true.
  EXPECT_EQ(ok_chat(R"({"messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":20})").sampling.logprobs, 20);
  EXPECT_EQ(bad(R"({"messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":21})").param, "top_logprobs");
  EXPECT_EQ(bad(R"({"messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":-1})").param, "top_logprobs");
}

TEST(OpenAIRequest, MalformedAndHostileBodies) {
  bad("");
  bad("{");
  bad("[1,2]");
  bad("null");
  bad(R"({"messages":[{"role":"user","content":"\ud800"}]})");
  bad(R"({"max_tokens":1e400,"messages":[{"role":"user","content":"hi"}]})");
  bad(std::string(100, '[') + std::string(100, ']'));
  bad("{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}");
}

const std::string kMsgs = R"("messages":[{"role":"user","content":"hi"}])";

TEST(OpenAIRequest, OutputConstraintsFromEveryApi) {
  using grammar::GrammarKind;
  struct Case {
    std::string fields;
    GrammarKind kind;
    std::string param;
  };
  const Case cases[] = {
      {R"("response_format":{"type":"json_object"})", GrammarKind::kJsonObject, "response_format"},
      {R"("response_format":{"type":"json_schema","json_schema":{"name":"p","schema":{"type":"integer"},"strict":true}})",
       GrammarKind::kJsonSchema, "response_format.json_schema.schema"},
      {R"("response_format":{"type":"json_schema","schema":{"type":"integer"}})", GrammarKind::kJsonSchema,
       "response_format.schema"},
      {R"("response_format":{"type":"json_object","schema":{"type":"integer"}})", GrammarKind::kJsonSchema,
       "response_format"},
      {R"("guided_json":{"type":"integer"})", GrammarKind::kJsonSchema, "guided_json"},
      {R"("guided_json":"{\"type\":\"integer\"}")", GrammarKind::kJsonSchema, "guided_json"},
      {R"("guided_regex":"[0-9]+")", GrammarKind::kRegex, "guided_regex"},
      {R"("guided_choice":["a","b"])", GrammarKind::kChoices, "guided_choice"},
      {R"("guided_grammar":"root ::= \"x\"")", GrammarKind::kGbnf, "guided_grammar"},
      {R"("grammar":"root ::= \"x\"")", GrammarKind::kGbnf, "grammar"},
      {R"("json_schema":{"type":"integer"})", GrammarKind::kJsonSchema, "json_schema"},
      {R"("structured_outputs":{"regex":"a+"})", GrammarKind::kRegex, "structured_outputs.regex"},
  };
  for (const Case& c : cases) {
    for (bool chat : {true, false}) {
      const std::string body = "{" + (chat ? kMsgs : std::string(R"("prompt":"x")")) + "," + c.fields + "}";
      OpenAIRequest r;
      ApiError e;
      ASSERT_TRUE(parse_openai_request(body, chat, RequestLimits{}, &r, &e)) << body << " -> " << e.message;
      ASSERT_TRUE(r.constraint.has_value()) << body;
      EXPECT_EQ(r.constraint->spec.kind, c.kind) << body;
      EXPECT_EQ(r.constraint->param, c.param) << body;
    }
  }
  OpenAIRequest r = ok_chat("{" + kMsgs + R"(,"response_format":{"type":"text"}})");
  EXPECT_FALSE(r.constraint.has_value());
  r = ok_chat("{" + kMsgs + R"(,"guided_choice":["x","y z"]})");
  EXPECT_EQ(r.constraint->spec.choices, (std::vector<std::string>{"x", "y z"}));
}

TEST(OpenAIRequest, OutputConstraintErrorsNameTheFieldAndCode) {
  auto code = [](const std::string& fields) {
    ApiError e = bad("{" + kMsgs + "," + fields + "}");
    return e.param + " " + e.code;
  };
  EXPECT_EQ(code(R"("response_format":"json")"), "response_format invalid_response_format");
  EXPECT_EQ(code(R"("response_format":{"type":"xml"})"), "response_format.type invalid_response_format");
  EXPECT_EQ(code(R"("response_format":{"type":"json_schema"})"), "response_format.json_schema.schema invalid_response_format");
  EXPECT_EQ(code(R"("response_format":{"type":"json_schema","json_schema":{"schema":5}})"),
            "response_format.json_schema.schema invalid_json_schema");
  EXPECT_EQ(code(R"("guided_regex":5)"), "guided_regex invalid_regex");
  EXPECT_EQ(code(R"("guided_choice":[])"), "guided_choice invalid_choice");
  EXPECT_EQ(code(R"("guided_choice":["a",1])"), "guided_choice invalid_choice");
  EXPECT_EQ(code(R"("guided_grammar":{})"), "guided_grammar invalid_grammar");
  EXPECT_EQ(code(R"("guided_regex":"a","guided_choice":["a"])"), "guided_choice conflicting_output_constraints");
  EXPECT_EQ(code(R"("response_format":{"type":"json_object"},"grammar":"root ::= \"a\"")"),
            "grammar conflicting_output_constraints");
}

const std::string kTools =
    R"("tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},
               {"type":"function","function":{"name":"search"}}])";

TEST(OpenAIRequest, ToolsAndToolChoice) {
  OpenAIRequest r = ok_chat("{" + kMsgs + "," + kTools + "}");
  EXPECT_EQ(r.tool_names, (std::vector<std::string>{"get_weather", "search"}));
  EXPECT_EQ(r.tool_choice, ToolChoice::kAuto);
  EXPECT_TRUE(r.parallel_tool_calls);
  EXPECT_FALSE(r.tools_json.empty());
  r = ok_chat("{" + kMsgs + "," + kTools + R"(,"tool_choice":"required","parallel_tool_calls":false})");
  EXPECT_EQ(r.tool_choice, ToolChoice::kRequired);
  EXPECT_FALSE(r.parallel_tool_calls);
  r = ok_chat("{" + kMsgs + "," + kTools + R"(,"tool_choice":{"type":"function","function":{"name":"search"}}})");
  EXPECT_EQ(r.tool_choice, ToolChoice::kFunction);
  EXPECT_EQ(r.tool_choice_function, "search");
  r = ok_chat("{" + kMsgs + "," + kTools + R"(,"tool_choice":"none"})");
  EXPECT_EQ(r.tool_choice, ToolChoice::kNone);
  r = ok_chat("{" + kMsgs + R"(,"chat_template_kwargs":{"enable_thinking":false}})");
  EXPECT_EQ(r.chat_template_kwargs_json, R"({"enable_thinking":false})");

  auto code = [](const std::string& fields) {
    ApiError e = bad("{" + kMsgs + "," + fields + "}");
    return e.param + " " + e.code;
  };
  EXPECT_EQ(code(kTools + R"(,"tool_choice":{"type":"function","function":{"name":"nope"}})"), "tool_choice tool_not_found");
  EXPECT_EQ(code(kTools + R"(,"tool_choice":"sometimes")"), "tool_choice invalid_tool_choice");
  EXPECT_EQ(code(R"("tool_choice":"required")"), "tool_choice invalid_tool_choice");
  EXPECT_EQ(code(R"("tools":{})"), "tools invalid_tools");
  EXPECT_EQ(code(R"("tools":[{"type":"function","function":{}}])"), "tools[0].function.name invalid_tools");
  EXPECT_EQ(code(R"("tools":[{"type":"retrieval"}])"), "tools[0].type invalid_tools");
  EXPECT_EQ(code(R"("tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"a"}}])"),
            "tools[1].function.name invalid_tools");
  EXPECT_EQ(code(kTools + R"(,"tool_choice":"required","guided_regex":"a")"), "guided_regex conflicting_output_constraints");
  EXPECT_EQ(code(R"("chat_template_kwargs":[1])"), "chat_template_kwargs ");
  ApiError e = bad(R"({"prompt":"x","tools":[]})", false);
  EXPECT_EQ(e.param, "tools");
}

TEST(OpenAIRequest, MessagesFillTheTypedToolFields) {
  OpenAIRequest r = ok_chat(R"({"messages":[{"role":"user","content":"weather?"},
      {"role":"assistant","content":null,"reasoning_content":"think","tool_calls":[{"id":"call_1","type":"function",
        "function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}},
        {"id":"call_2","type":"function","function":{"name":"search","arguments":{"q":"x"}}}]},
      {"role":"tool","tool_call_id":"call_1","name":"get_weather","content":"sunny"}]})");
  ASSERT_EQ(r.messages.size(), 3u);
  const ChatMessage& a = r.messages[1];
  EXPECT_FALSE(a.content.has_value());
  EXPECT_EQ(a.reasoning_content, std::optional<std::string>("think"));
  ASSERT_EQ(a.tool_calls.size(), 2u);
  EXPECT_EQ(a.tool_calls[0].id, "call_1");
  EXPECT_EQ(a.tool_calls[0].name, "get_weather");
  EXPECT_EQ(a.tool_calls[0].arguments_json, R"({"city":"Oslo"})");
  EXPECT_EQ(a.tool_calls[1].arguments_json, R"({"q":"x"})");
  const ChatMessage& t = r.messages[2];
  EXPECT_EQ(t.role, "tool");
  EXPECT_EQ(t.tool_call_id, "call_1");
  EXPECT_EQ(t.name, "get_weather");
  EXPECT_EQ(*t.content, "sunny");
  EXPECT_TRUE(t.extra_json.empty());
  EXPECT_EQ(bad(R"({"messages":[{"role":"assistant","tool_calls":[{"function":{}}]}]})").param, "messages[0].tool_calls[0]");
  EXPECT_EQ(bad(R"({"messages":[{"role":"tool","tool_call_id":5,"content":"x"}]})").param, "messages[0].tool_call_id");
}

TEST(OpenAIRequest, NestingDepthIgnoresBracketsInStrings) {
  EXPECT_EQ(json_nesting_depth(R"({"a":[{"b":"[[[[{{{"}]})"), 3);
  EXPECT_EQ(json_nesting_depth(R"({"a":"\"[["})"), 1);
}

}  // namespace
}  // namespace kr
