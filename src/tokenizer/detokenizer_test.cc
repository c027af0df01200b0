// IncrementalDetokenizer: pushing every golden case's ids one at a time gives
// valid UTF-8 pieces that add up to the full decode.
#include <gtest/gtest.h>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_test_util.h"
#include "tokenizer/unicode.h"

namespace kr {
namespace {

void check_stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special, const std::string& what) {
  IncrementalDetokenizer detok(&tok, skip_special);
  std::string all;
  for (int32_t id : ids) {
    const std::string piece = detok.push(id);
    ASSERT_TRUE(unicode::is_valid_utf8(piece)) << what;
    all += piece;
  }
  const std::string rest = detok.flush();
  ASSERT_TRUE(unicode::is_valid_utf8(rest)) << what;
  all += rest;
  EXPECT_EQ(all, tok.decode(ids, skip_special)) << what;
}

TEST(IncrementalDetokenizer, Llama3GoldenCases) {
  const Tokenizer& tok = testing_util::llama3();
  for (const auto& c : testing_util::llama3_cases()) {
    check_stream(tok, c.ids, false, c.text);
    check_stream(tok, c.ids, true, c.text);
  }
}

TEST(IncrementalDetokenizer, Qwen3GoldenCases) {
  const Tokenizer& tok = testing_util::qwen3();
  for (const auto& c : testing_util::qwen3_cases()) check_stream(tok, c.ids, false, c.text);
}

TEST(IncrementalDetokenizer, HoldsBackIncompleteCharacter) {
  const Tokenizer& tok = testing_util::llama3();
  // Find the byte tokens of "€" (E2 82 AC) so that it arrives one byte at a time.
  std::vector<int32_t> bytes;
  for (uint8_t b : {0xE2, 0x82, 0xAC}) {
    for (int32_t id = 0; id < tok.vocab_size(); ++id) {
      if (tok.token_bytes(id) == std::string(1, static_cast<char>(b))) {
        bytes.push_back(id);
        break;
      }
    }
  }
  ASSERT_EQ(bytes.size(), 3u);
  IncrementalDetokenizer d(&tok, false);
  EXPECT_EQ(d.push(bytes[0]), "");
  EXPECT_EQ(d.push(bytes[1]), "");
  EXPECT_EQ(d.push(bytes[2]), "€");
  // A truncated character at the end becomes U+FFFD on flush.
  EXPECT_EQ(d.push(bytes[0]), "");
  EXPECT_EQ(d.flush(), "\xEF\xBF\xBD");
  // A broken sequence followed by ASCII is replaced at once.
  EXPECT_EQ(d.push(bytes[0]), "");
  EXPECT_EQ(d.push(*tok.token_to_id("a")), "\xEF\xBF\xBD" "a");
  EXPECT_EQ(d.flush(), "");
  // Special tokens: skipped or spelled out.
  IncrementalDetokenizer skip(&tok, true);
  EXPECT_EQ(skip.push(128009), "");
  IncrementalDetokenizer keep(&tok, false);
  EXPECT_EQ(keep.push(128009), "<|eot_id|>");
}

}  // namespace
}  // namespace kr
