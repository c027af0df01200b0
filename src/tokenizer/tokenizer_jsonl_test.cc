// The JSON-lines protocol of `kr-serve tokenize` (tokenizer/tokenizer_jsonl.h).
#include <gtest/gtest.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer_jsonl.h"
#include "tokenizer/tokenizer_test_util.h"

namespace kr {
namespace {

std::vector<nlohmann::json> lines_of(const std::string& s) {
  std::vector<nlohmann::json> out;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(TokenizeJsonl, EncodeAndDecodeLines) {
  const Tokenizer& tok = testing_util::llama3();
  std::istringstream in("{\"text\": \"Hello<|eot_id|>\"}\nnot json\n{\"ids\": [1]}\n\n{\"text\": \"\"}\n");
  std::ostringstream out;
  EXPECT_EQ(run_tokenize_jsonl(tok, /*decode=*/false, in, out), 2u);
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0]["ids"].get<std::vector<int32_t>>(), tok.encode("Hello<|eot_id|>", true));
  EXPECT_EQ(lines[0]["ids"].back(), 128009);
  EXPECT_TRUE(lines[1].contains("error"));
  EXPECT_TRUE(lines[2].contains("error"));
  EXPECT_EQ(lines[3]["ids"].size(), 0u);

  const std::vector<int32_t> ids = tok.encode("héllo wörld<|eot_id|>", true);
  std::istringstream din(nlohmann::json{{"ids", ids}}.dump() + "\n{\"ids\": [-1]}\n{\"ids\": [\"x\"]}\n{\"text\": \"a\"}\n");
  std::ostringstream dout;
  EXPECT_EQ(run_tokenize_jsonl(tok, /*decode=*/true, din, dout), 3u);
  const auto dlines = lines_of(dout.str());
  ASSERT_EQ(dlines.size(), 4u);
  EXPECT_EQ(dlines[0]["text"], "héllo wörld<|eot_id|>");
  for (int i = 1; i < 4; ++i) EXPECT_TRUE(dlines[i].contains("error")) << i;
}

}  // namespace
}  // namespace kr
