#include "tokenizer/tokenizer_config.h"

#include <gtest/gtest.h>

namespace kr {
namespace {

TEST(TokenizerConfig, ReadsLlama3Fixture) {
  auto c = read_tokenizer_config(std::string(KR_SOURCE_DIR) + "/models/tiny-llama3/tokenizer_config.json");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->bos_token, std::optional<std::string>("<|begin_of_text|>"));
  EXPECT_EQ(c->eos_token, std::optional<std::string>("<|eot_id|>"));
  EXPECT_NE(c->chat_template.find("<|start_header_id|>"), std::string::npos);
}

TEST(TokenizerConfig, ReadsQwen3Fixture) {
  auto c = read_tokenizer_config(std::string(KR_SOURCE_DIR) + "/tests/golden/qwen3-tokenizer/tokenizer_config.json");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->eos_token, std::optional<std::string>("<|im_end|>"));
  EXPECT_NE(c->chat_template.find("<|im_start|>"), std::string::npos);
}

TEST(TokenizerConfig, FieldForms) {
  auto c = parse_tokenizer_config(R"({"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": null,
      "add_bos_token": true, "chat_template": [{"name": "tool_use", "template": "T"},
      {"name": "default", "template": "D"}]})");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->bos_token, std::optional<std::string>("<s>"));
  EXPECT_EQ(c->eos_token, std::nullopt);
  EXPECT_EQ(c->add_bos_token, std::optional<bool>(true));
  EXPECT_EQ(c->chat_template, "D");
  auto empty = parse_tokenizer_config("{}");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->bos_token, std::nullopt);
  EXPECT_EQ(empty->add_bos_token, std::nullopt);
  EXPECT_EQ(empty->chat_template, "");
}

TEST(TokenizerConfig, Errors) {
  EXPECT_EQ(parse_tokenizer_config("[1]").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(parse_tokenizer_config(R"({"bos_token": 3})").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(parse_tokenizer_config(R"({"chat_template": 3})").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(parse_tokenizer_config(R"({"add_bos_token": "yes"})").status().code(), StatusCode::kInvalidArgument);
  auto missing = read_tokenizer_config("no/such/tokenizer_config.json");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace kr
