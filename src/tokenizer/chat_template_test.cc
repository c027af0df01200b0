// Golden tests: the templates of real tokenizer_config.json files rendered as
// transformers' apply_chat_template rendered them (tests/golden/*.json).
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace kr {
namespace {

using nlohmann::ordered_json;

std::string read_file(const std::string& rel) {
  std::ifstream f(std::string(KR_SOURCE_DIR) + "/" + rel, std::ios::binary);
  EXPECT_TRUE(f.good()) << rel;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Loaded {
  ChatTemplate tmpl;
  ChatTemplateConfig config;
};

Loaded load(const std::string& config_path) {
  auto cfg = read_chat_template_config(read_file(config_path));
  EXPECT_TRUE(cfg.ok()) << cfg.status().to_string();
  auto t = ChatTemplate::parse(cfg->source);
  EXPECT_TRUE(t.ok()) << t.status().to_string();
  return Loaded{std::move(*t), std::move(*cfg)};
}

TEST(ChatTemplateGolden, TinyLlama3Chat) {
  Loaded l = load("models/tiny-llama3/tokenizer_config.json");
  EXPECT_EQ(l.config.bos_token, "<|begin_of_text|>");
  ordered_json golden = ordered_json::parse(read_file("tests/golden/tiny-llama3.expected.json"));
  ASSERT_EQ(golden["chat"].size(), 8u);
  for (const auto& c : golden["chat"]) {
    ordered_json ctx = {{"messages", c["messages"]},
                        {"add_generation_prompt", c["add_generation_prompt"]},
                        {"bos_token", "<|begin_of_text|>"}};
    auto out = l.tmpl.render(ctx);
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    EXPECT_EQ(*out, c["text"].get<std::string>()) << c["messages"].dump();
  }
}

void check_family(const std::string& family, const std::string& config_path, size_t expected_cases) {
  Loaded l = load(config_path);
  ordered_json golden = ordered_json::parse(read_file("tests/golden/chat-templates.expected.json"));
  const auto& cases = golden["templates"][family];
  ASSERT_EQ(cases.size(), expected_cases);
  for (const auto& c : cases) {
    ordered_json ctx = {{"messages", c["messages"]},
                        {"add_generation_prompt", c["add_generation_prompt"]},
                        {"bos_token", l.config.bos_token},
                        {"eos_token", l.config.eos_token}};
    for (const auto& [k, v] : c["kwargs"].items()) ctx[k] = v;
    auto out = l.tmpl.render(ctx);
    std::string label = family + "/" + c["name"].get<std::string>() +
                        (c["add_generation_prompt"].get<bool>() ? " +gen" : "");
    if (c.contains("error")) {
      ASSERT_FALSE(out.ok()) << label;
      EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << label;
      // transformers: "UndefinedError: 'list object' has no attribute 'startswith'"
      EXPECT_NE(out.status().message().find(c["error"].get<std::string>()), std::string::npos)
          << label << ": " << out.status().message();
    } else {
      ASSERT_TRUE(out.ok()) << label << ": " << out.status().to_string();
      EXPECT_EQ(*out, c["text"].get<std::string>()) << label;
    }
  }
}

TEST(ChatTemplateGolden, Qwen3) { check_family("qwen3", "tests/golden/qwen3-tokenizer/tokenizer_config.json", 18); }

TEST(ChatTemplateGolden, Gemma3) { check_family("gemma3", "tests/golden/gemma3-template/tokenizer_config.json", 10); }

TEST(ChatTemplateGolden, Gemma3RaisesOnNonAlternatingRoles) {
  Loaded l = load("tests/golden/gemma3-template/tokenizer_config.json");
  ordered_json ctx = {{"messages", {{{"role", "user"}, {"content", "a"}}, {{"role", "user"}, {"content", "b"}}}},
                      {"bos_token", "<bos>"}};
  auto out = l.tmpl.render(ctx);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(), "Conversation roles must alternate user/assistant/user/assistant/...");
}

TEST(ChatTemplateGolden, ConcurrentRendersAgree) {
  Loaded l = load("tests/golden/qwen3-tokenizer/tokenizer_config.json");
  ordered_json golden = ordered_json::parse(read_file("tests/golden/chat-templates.expected.json"));
  const auto& c = golden["templates"]["qwen3"][12];  // tool_call_roundtrip
  ordered_json ctx = {{"messages", c["messages"]}, {"add_generation_prompt", c["add_generation_prompt"]}};
  for (const auto& [k, v] : c["kwargs"].items()) ctx[k] = v;
  const std::string expected = c["text"].get<std::string>();
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto out = l.tmpl.render(ctx);
        if (!out.ok() || *out != expected) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

TEST(ChatTemplateConfig, ReadsStringsObjectsAndNamedLists) {
  auto cfg = read_chat_template_config(
      R"({"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>",
          "chat_template": [{"name": "default", "template": "A"}, {"name": "tool_use", "template": "B"}]})");
  ASSERT_TRUE(cfg.ok()) << cfg.status().to_string();
  EXPECT_EQ(cfg->bos_token, "<s>");
  EXPECT_EQ(cfg->eos_token, "</s>");
  EXPECT_EQ(cfg->source, "A");
  auto tool = read_chat_template_config(R"({"chat_template": [{"name": "tool_use", "template": "B"}]})", "tool_use");
  ASSERT_TRUE(tool.ok());
  EXPECT_EQ(tool->source, "B");
  EXPECT_EQ(read_chat_template_config(R"({"chat_template": [{"name": "x", "template": "B"}]})").status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(read_chat_template_config("{}").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(read_chat_template_config("not json").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(read_chat_template_config(R"({"chat_template": [{"name": 3}]})").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ChatTemplate, SortedJsonOverloadAndBadContext) {
  auto t = ChatTemplate::parse("{{ d | tojson }}");
  ASSERT_TRUE(t.ok());
  auto out = t->render(nlohmann::json::parse(R"({"d": {"b": 1, "a": 2}})"));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, R"({"a": 2, "b": 1})");
  auto ordered = t->render(ordered_json::parse(R"({"d": {"b": 1, "a": 2}})"));
  ASSERT_TRUE(ordered.ok());
  EXPECT_EQ(*ordered, R"({"b": 1, "a": 2})");
  EXPECT_EQ(t->render(ordered_json::array()).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kr
