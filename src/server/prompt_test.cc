// admit_prompt: BOS unless present, ids checked against the vocabulary, chat
// through the template, and the one context check with its default max_tokens.
#include "server/prompt.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "engine/request.h"

#include "tokenizer/chat_prompt.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"

namespace kr {
namespace {

const std::string kModel = std::string(KR_SOURCE_DIR) + "/models/tiny-llama3";
constexpr int32_t kBos = 128000;

struct PromptTest : ::testing::Test {
  void SetUp() override {
    auto t = Tokenizer::load_from_file(kModel + "/tokenizer.json");
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    tok = std::move(t).value();
    auto cfg = read_tokenizer_config(kModel + "/tokenizer_config.json");
    ASSERT_TRUE(cfg.ok());
    auto made = make_chat_prompt_builder(tok.get(), *cfg);
    ASSERT_TRUE(made.ok());
    chat = std::move(made).value();
    ctx.tokenizer = tok.get();
    ctx.chat = chat.get();
    ctx.bos_id = kBos;
    ctx.vocab_size = 128256;
    ctx.max_model_len = 64;
  }
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<ChatPromptBuilder> chat;
  PromptContext ctx;
};

TEST_F(PromptTest, TextGetsBosUnlessItHasIt) {
  const std::string plain = "Hello world", with_bos = "<|begin_of_text|>Hello world";
  PromptInput in;
  in.text = &plain;
  auto a = admit_prompt(in, ctx);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_EQ(a->ids.front(), kBos);
  EXPECT_EQ(std::vector<int32_t>(a->ids.begin() + 1, a->ids.end()), tok->encode(plain, true));
  in.text = &with_bos;
  auto b = admit_prompt(in, ctx);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->ids, a->ids);  // not twice
  in.add_special_tokens = false;
  in.text = &plain;
  EXPECT_EQ(admit_prompt(in, ctx)->ids, tok->encode(plain, true));
  ctx.bos_id.reset();  // a model without BOS
  in.add_special_tokens = true;
  EXPECT_EQ(admit_prompt(in, ctx)->ids, tok->encode(plain, true));
}

TEST_F(PromptTest, OneContextCheckAndTheRoomLeftAsDefault) {
  const std::vector<int32_t> ids(10, 9906);
  PromptInput in;
  in.ids = &ids;
  auto a = admit_prompt(in, ctx);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->max_tokens, 54);  // 64 - 10
  in.max_tokens = 54;
  EXPECT_TRUE(admit_prompt(in, ctx).ok());
  in.max_tokens = 55;
  const Status s = admit_prompt(in, ctx).status();
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(s.message(), check_context_length(10, 55, 64).message());
  EXPECT_EQ(s.message(),
            "This model's maximum context length is 64 tokens. However, you requested 65 tokens (10 in the prompt, "
            "55 for the completion).");
  const std::vector<int32_t> full(64, 9906);
  in.ids = &full;
  in.max_tokens.reset();  // no room for one token
  EXPECT_EQ(admit_prompt(in, ctx).status().code(), StatusCode::kOutOfRange);
  in.generation = false;  // /tokenize: no context check
  EXPECT_TRUE(admit_prompt(in, ctx).ok());
}

TEST_F(PromptTest, IdsMustBeInTheVocabularyAndThePromptNotEmpty) {
  const std::vector<int32_t> bad = {1, 128256}, none;
  PromptInput in;
  in.ids = &bad;
  const Status s = admit_prompt(in, ctx).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("vocabulary"), std::string::npos);
  in.ids = &none;
  EXPECT_EQ(admit_prompt(in, ctx).status().code(), StatusCode::kInvalidArgument);
  in.generation = false;
  EXPECT_TRUE(admit_prompt(in, ctx).ok());  // /tokenize of nothing is nothing
}

TEST_F(PromptTest, ChatGoesThroughTheTemplate) {
  ChatMessage user;
  user.role = "user";
  user.content = "Hi";
  const std::vector<ChatMessage> msgs = {user};
  PromptInput in;
  in.messages = &msgs;
  auto a = admit_prompt(in, ctx);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_EQ(a->ids, chat->build(msgs, "", true)->ids);
  EXPECT_EQ(a->ids.front(), kBos);  // from the template, not added again
  EXPECT_EQ(std::count(a->ids.begin(), a->ids.end(), kBos), 1);
  ctx.chat = nullptr;
  EXPECT_EQ(admit_prompt(in, ctx).status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace kr
