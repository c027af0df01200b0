// LogprobsWriter: the chat and completions shapes, chunks that add up to the
// whole, -inf as -9999, and one key for tokens that print alike.
#include "server/logprobs_writer.h"

#include <cmath>

#include <gtest/gtest.h>

#include "tokenizer/tokenizer.h"

namespace kr {
namespace {

using json = nlohmann::json;

const Tokenizer& tok() {
  static std::unique_ptr<Tokenizer> t = [] {
    auto r = Tokenizer::load_from_file(std::string(KR_SOURCE_DIR) + "/models/tiny-llama3/tokenizer.json");
    EXPECT_TRUE(r.ok());
    return std::move(r).value();
  }();
  return *t;
}

SampledToken token(int32_t id, float lp, std::vector<std::pair<int32_t, float>> top) {
  SampledToken t;
  t.id = id;
  t.logprob = lp;
  t.top = std::move(top);
  return t;
}

TEST(LogprobsWriter, ChatForm) {
  LogprobsWriter w(/*chat=*/true, &tok(), /*tokens_as_ids=*/false);
  EXPECT_TRUE(w.empty());
  const int32_t hello = 9906;  // "Hello"
  w.add(token(hello, -0.5f, {{hello, -0.5f}, {1917, -INFINITY}}), 0);
  EXPECT_FALSE(w.empty());
  const json j = w.take();
  EXPECT_TRUE(w.empty());
  ASSERT_EQ(j["content"].size(), 1u);
  const json& e = j["content"][0];
  EXPECT_EQ(e["token"], tok().token_bytes(hello));
  EXPECT_EQ(e["logprob"], -0.5);
  EXPECT_EQ(e["bytes"].size(), tok().token_bytes(hello).size());
  ASSERT_EQ(e["top_logprobs"].size(), 2u);
  EXPECT_EQ(e["top_logprobs"][1]["logprob"], -9999.0);  // -inf: JSON has none
  EXPECT_EQ(w.take(), json({{"content", json::array()}}));
}

TEST(LogprobsWriter, CompletionsFormAcrossChunks) {
  LogprobsWriter w(/*chat=*/false, &tok(), /*tokens_as_ids=*/true);
  w.add(token(5, -1.0f, {{5, -1.0f}, {6, -2.0f}}), 0);
  const json first = w.take();
  w.add(token(6, -2.0f, {}), 3);
  const json second = w.take();
  EXPECT_EQ(first["tokens"], json::array({"token_id:5"}));
  EXPECT_EQ(first["top_logprobs"][0], json({{"token_id:5", -1.0}, {"token_id:6", -2.0}}));
  EXPECT_EQ(second["tokens"], json::array({"token_id:6"}));
  EXPECT_EQ(second["token_logprobs"], json::array({-2.0}));
  EXPECT_EQ(second["text_offset"], json::array({3}));
  EXPECT_EQ(second["top_logprobs"], json::array({json::object()}));
}

// Two byte tokens that are each invalid UTF-8 print as the same U+FFFD key.
TEST(LogprobsWriter, TokensThatPrintAlikeShareOneKey) {
  std::vector<int32_t> lone;
  for (int32_t id = 0; id < 1000 && lone.size() < 2; ++id) {
    const std::string b = tok().token_bytes(id);
    if (b.size() == 1 && static_cast<unsigned char>(b[0]) >= 0x80) lone.push_back(id);
  }
  ASSERT_EQ(lone.size(), 2u);
  LogprobsWriter w(/*chat=*/false, &tok(), /*tokens_as_ids=*/false);
  w.add(token(lone[0], -1.0f, {{lone[0], -1.0f}, {lone[1], -2.0f}}), 0);
  const json j = w.take();
  EXPECT_EQ(j["top_logprobs"][0].size(), 1u);
  EXPECT_EQ(j["top_logprobs"][0].begin().key(), "\xEF\xBF\xBD");
  EXPECT_EQ(j["top_logprobs"][0].begin().value(), -2.0);  // the later one, as a JSON parser keeps
}

}  // namespace
}  // namespace kr
