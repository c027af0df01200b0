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

std::vector<std::string> run(const PreTokenizer& pt, std::string_view text, bool at_origin = true) {
  std::vector<Piece> pieces;
  std::vector<PieceSpan> scratch;
  std::deque<std::string> storage;
  pt.split(text, at_origin, &pieces, &scratch, &storage);
  std::vector<std::string> out;
  for (const Piece& p : pieces) out.emplace_back(p.text);
  return out;
}

PreTokenizer parse(const char* json) {
  auto p = PreTokenizer::from_json(json);
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return p.ok() ? *p : PreTokenizer();
}

TEST(Pretokenize, PipelineBehaviours) {
  PreTokenizerStep removed;
  removed.pattern = SplitPattern::kLlama3;
  removed.behavior = SplitBehavior::kRemoved;
  EXPECT_TRUE(run(PreTokenizer({removed}), "a b").empty());
  // ByteLevel's prefix space goes before the regex split, once per input piece.
  PreTokenizerStep bl;
  bl.kind = PreTokenizerStep::Kind::kByteLevel;
  bl.add_prefix_space = true;
  EXPECT_EQ(run(PreTokenizer({bl}), "hello world"), (V{" hello", " world"}));
  EXPECT_EQ(run(PreTokenizer({bl}), "a.b"), (V{" a", ".", "b"}));
}

// Hugging Face's SplitDelimiterBehavior on a literal pattern (the examples of
// tokenizers' normalizer.rs tests).
TEST(Pretokenize, StringSplitBehaviours) {
  const auto split_with = [](const char* behavior, bool invert = false) {
    std::string j = std::string(R"({"type": "Split", "pattern": {"String": "-"}, "behavior": ")") + behavior +
                    R"(", "invert": )" + (invert ? "true" : "false") + "}";
    return run(parse(j.c_str()), "The-final--countdown");
  };
  EXPECT_EQ(split_with("Removed"), (V{"The", "final", "countdown"}));
  EXPECT_EQ(split_with("Isolated"), (V{"The", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split_with("MergedWithPrevious"), (V{"The-", "final-", "-", "countdown"}));
  EXPECT_EQ(split_with("MergedWithNext"), (V{"The", "-final", "-", "-countdown"}));
  EXPECT_EQ(split_with("Contiguous"), (V{"The", "-", "final", "--", "countdown"}));
  EXPECT_EQ(split_with("Removed", true), (V{"-", "-", "-"}));
  // Gemma 3's pre-tokenizer: split on " ", merged with the previous piece.
  const PreTokenizer gemma = parse(R"({"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": false})");
  EXPECT_EQ(run(gemma, " a  b "), (V{" ", "a ", " ", "b "}));
}

TEST(Pretokenize, Metaspace) {
  const PreTokenizer always = parse(R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true})");
  EXPECT_EQ(run(always, "Hey friend!"), (V{"▁Hey", "▁friend!"}));
  EXPECT_EQ(run(always, "Hey   friend"), (V{"▁Hey", "▁", "▁", "▁friend"}));
  EXPECT_EQ(run(always, " lead"), (V{"▁lead"}));  // already starts with a space: nothing prepended
  EXPECT_EQ(run(always, "mid", /*at_origin=*/false), (V{"▁mid"}));
  const PreTokenizer first = parse(R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false})");
  EXPECT_EQ(run(first, "Hey friend"), (V{"▁Hey▁friend"}));
  EXPECT_EQ(run(first, "Hey friend", /*at_origin=*/false), (V{"Hey▁friend"}));
  const PreTokenizer never = parse(R"({"type": "Metaspace", "replacement": "▁", "add_prefix_space": false})");
  EXPECT_EQ(run(never, "a b"), (V{"a", "▁b"}));
}

TEST(Pretokenize, Tekken) {
  // Case-split words: an upper-case run followed by lower case gives back its last letter.
  EXPECT_EQ(split(SplitPattern::kTekken, "HTTPServer camelCase"), (V{"HTTPServer", " camel", "Case"}));
  EXPECT_EQ(split(SplitPattern::kTekken, "ABC def"), (V{"ABC", " def"}));
  EXPECT_EQ(split(SplitPattern::kTekken, "I'm don't"), (V{"I", "'m", " don", "'t"}));
  EXPECT_EQ(split(SplitPattern::kTekken, "12345"), (V{"1", "2", "3", "4", "5"}));
  EXPECT_EQ(split(SplitPattern::kTekken, "a//b\n"), (V{"a", "//", "b", "\n"}));
  EXPECT_EQ(split(SplitPattern::kTekken, "x;\n/y"), (V{"x", ";\n/", "y"}));
}

TEST(Pretokenize, Errors) {
  for (const char* bad : {R"({"type": "Digits", "individual_digits": true})",
                          R"({"type": "Split", "pattern": {"Regex": "\\d+"}, "behavior": "Isolated"})",
                          R"({"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"}, {"type": "Split", "pattern": {"String": " "}, "behavior": "Removed"}]})"}) {
    auto p = PreTokenizer::from_json(bad);
    EXPECT_EQ(p.status().code(), StatusCode::kUnimplemented) << bad;
    EXPECT_NE(p.status().message().find("pre_tokenizer"), std::string::npos) << p.status().message();
  }
  EXPECT_EQ(PreTokenizer::from_json(R"({"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"})").status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kr
