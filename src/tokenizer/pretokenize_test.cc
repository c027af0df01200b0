// The hand-written regex matchers on tricky strings. Expected splits follow
// the regex semantics (leftmost-first alternation, backtracking).
#include "tokenizer/pretokenize.h"

#include <gtest/gtest.h>

namespace kr {
namespace {

std::vector<std::string> split(SplitPattern p, std::string_view text) {
  std::vector<PieceSpan> spans;
  find_matches(p, text, &spans);
  std::vector<std::string> out;
  for (const PieceSpan& s : spans) out.emplace_back(text.substr(s.begin, s.end - s.begin));
  return out;
}

using V = std::vector<std::string>;

TEST(Pretokenize, Contractions) {
  EXPECT_EQ(split(SplitPattern::kLlama3, "I'm they'RE we'll it's"), (V{"I", "'m", " they", "'RE", " we", "'ll", " it", "'s"}));
  // Case-insensitive in the GPT-4 pattern, not in GPT-2's.
  EXPECT_EQ(split(SplitPattern::kLlama3, "DON'T"), (V{"DON", "'T"}));
  EXPECT_EQ(split(SplitPattern::kGpt2, "DON'T"), (V{"DON", "'", "T"}));
  // 'sup: the contraction wins over the letter run.
  EXPECT_EQ(split(SplitPattern::kLlama3, "'sup"), (V{"'s", "up"}));
  // Not a contraction: the apostrophe prefixes the word.
  EXPECT_EQ(split(SplitPattern::kLlama3, "'x"), (V{"'x"}));
}

TEST(Pretokenize, Numbers) {
  EXPECT_EQ(split(SplitPattern::kLlama3, "1234567"), (V{"123", "456", "7"}));
  EXPECT_EQ(split(SplitPattern::kQwen2, "1234"), (V{"1", "2", "3", "4"}));
  EXPECT_EQ(split(SplitPattern::kGpt2, "a 1234"), (V{"a", " 1234"}));
  EXPECT_EQ(split(SplitPattern::kLlama3, "x 12"), (V{"x", " ", "12"}));
  EXPECT_EQ(split(SplitPattern::kLlama3, "v2.0"), (V{"v", "2", ".", "0"}));
}

TEST(Pretokenize, WhitespaceRuns) {
  // \s+(?!\S) leaves the last space to prefix the next word.
  EXPECT_EQ(split(SplitPattern::kLlama3, "a   b"), (V{"a", "  ", " b"}));
  EXPECT_EQ(split(SplitPattern::kLlama3, "a   "), (V{"a", "   "}));
  EXPECT_EQ(split(SplitPattern::kLlama3, "  "), (V{"  "}));
  // \s*[\r\n]+ takes whitespace up to the last newline of the run.
  EXPECT_EQ(split(SplitPattern::kLlama3, "a \n\n  b"), (V{"a", " \n\n", " ", " b"}));
  EXPECT_EQ(split(SplitPattern::kLlama3, "x\r\ny"), (V{"x", "\r\n", "y"}));
  // Punctuation takes trailing newlines.
  EXPECT_EQ(split(SplitPattern::kLlama3, "end.\n\nNext"), (V{"end", ".\n\n", "Next"}));
  EXPECT_EQ(split(SplitPattern::kLlama3, "a\tb"), (V{"a", "\tb"}));
  EXPECT_EQ(split(SplitPattern::kGpt2, "a \n\n b"), (V{"a", " \n\n", " b"}));
}

TEST(Pretokenize, PunctuationAndSymbols) {
  EXPECT_EQ(split(SplitPattern::kLlama3, "Hello, world!"), (V{"Hello", ",", " world", "!"}));
  EXPECT_EQ(split(SplitPattern::kLlama3, "a ... b"), (V{"a", " ...", " b"}));
  EXPECT_EQ(split(SplitPattern::kLlama3, "(x)"), (V{"(x", ")"}));
  EXPECT_EQ(split(SplitPattern::kLlama3, "hi \xF0\x9F\x98\x80\xF0\x9F\x98\x80!"),
            (V{"hi", " \xF0\x9F\x98\x80\xF0\x9F\x98\x80!"}));
}

TEST(Pretokenize, NonLatin) {
  EXPECT_EQ(split(SplitPattern::kLlama3, "中文 テスト"), (V{"中文", " テスト"}));
  // A combining mark is \p{M}, not \p{L}: it ends the letter run.
  EXPECT_EQ(split(SplitPattern::kLlama3, "e\xCC\x81t\xC3\xA9"), (V{"e", "\xCC\x81t\xC3\xA9"}));
  EXPECT_EQ(split(SplitPattern::kLlama3, "नमस्ते"), (V{"नमस", "्त", "े"}));
}

TEST(Pretokenize, InvalidUtf8ByteIsOther) {
  EXPECT_EQ(split(SplitPattern::kLlama3, "a\xFFz"), (V{"a", "\xFFz"}));
}

TEST(Pretokenize, PatternRecognition) {
  EXPECT_FALSE(parse_split_pattern("\\w+").ok());
  EXPECT_EQ(parse_split_pattern("\\w+").status().code(), StatusCode::kUnimplemented);
  auto gpt2 = parse_split_pattern(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
  ASSERT_TRUE(gpt2.ok());
  EXPECT_EQ(*gpt2, SplitPattern::kGpt2);
}

TEST(Pretokenize, PipelineBehaviours) {
  std::vector<std::string_view> pieces;
  std::vector<PieceSpan> scratch;
  std::deque<std::string> storage;
  PreTokenizer removed({SplitStep{SplitPattern::kLlama3, SplitBehavior::kRemoved, false}}, true, false);
  removed.split("a b", &pieces, &scratch, &storage);
  EXPECT_TRUE(pieces.empty());
  PreTokenizer prefix({SplitStep{SplitPattern::kGpt2}}, true, true);
  prefix.split("hello world", &pieces, &scratch, &storage);
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[0], " hello");
  EXPECT_EQ(pieces[1], " world");
}

}  // namespace
}  // namespace kr
