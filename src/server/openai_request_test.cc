#include "server/openai_request.h"

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
