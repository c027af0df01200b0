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

TEST(OpenAIRequest, NestingDepthIgnoresBracketsInStrings) {
  EXPECT_EQ(json_nesting_depth(R"({"a":[{"b":"[[[[{{{"}]})"), 3);
  EXPECT_EQ(json_nesting_depth(R"({"a":"\"[["})"), 1);
}

}  // namespace
}  // namespace kr
