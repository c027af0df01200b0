// Golden tests against Hugging Face tokenizers (all cases of the fixtures)
// and behaviour tests of special tokens and the public API.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <random>

#include "tokenizer/tokenizer_test_util.h"
#include "tokenizer/unicode.h"

namespace kr {
namespace {

using testing_util::GoldenCase;

// Timing bounds are loose in Debug and sanitizer builds.
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
constexpr bool kReleaseBuild = true;
#else
constexpr bool kReleaseBuild = false;
#endif

std::string show(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

void check_golden(const Tokenizer& tok, const std::vector<GoldenCase>& cases, size_t expected_count) {
  ASSERT_EQ(cases.size(), expected_count);
  size_t failures = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const GoldenCase& c = cases[i];
    const std::vector<int32_t> ids = tok.encode(c.text, /*parse_special=*/true);
    if (ids != c.ids) {
      ++failures;
      ADD_FAILURE() << "case " << i << " encode of \"" << c.text << "\"\n got " << show(ids) << "\nwant "
                    << show(c.ids);
    }
    const std::string decoded = tok.decode(c.ids, /*skip_special_tokens=*/false);
    if (decoded != c.decoded) {
      ++failures;
      ADD_FAILURE() << "case " << i << " decode: got \"" << decoded << "\" want \"" << c.decoded << "\"";
    }
    if (failures > 20) FAIL() << "too many failures";
  }
}

TEST(TokenizerGolden, Llama3AllCases) { check_golden(testing_util::llama3(), testing_util::llama3_cases(), 358); }

TEST(TokenizerGolden, Qwen3AllCases) { check_golden(testing_util::qwen3(), testing_util::qwen3_cases(), 258); }

TEST(Tokenizer, LoadIsFast) {
  // The shared fixture timed its one load of each file. Debug or sanitizer
  // builds are slower, so the bound is loose there.
  const double limit_s = kReleaseBuild ? 1.5 : 30.0;
  for (const char* rel : {testing_util::kLlama3Path, testing_util::kQwen3Path}) {
    const testing_util::Loaded& l = testing_util::load_once(rel);
    EXPECT_LT(l.load_s, limit_s) << rel;
    std::printf("load %s: %.3f s\n", rel, l.load_s);
  }
}

TEST(Tokenizer, SpecialTokenTextIsPlainWithoutParseSpecial) {
  const Tokenizer& tok = testing_util::llama3();
  const std::string text = "hi<|eot_id|>there";
  const std::vector<int32_t> with = tok.encode(text, true);
  EXPECT_NE(std::find(with.begin(), with.end(), 128009), with.end());
  const std::vector<int32_t> without = tok.encode(text, false);
  for (int32_t id : without) EXPECT_FALSE(tok.is_special(id)) << id;
  EXPECT_EQ(std::find(without.begin(), without.end(), 128009), without.end());
  // The plain tokens still spell the text.
  EXPECT_EQ(tok.decode(without, false), text);
  EXPECT_EQ(tok.decode(with, false), text);
  EXPECT_EQ(tok.decode(with, /*skip_special_tokens=*/true), "hithere");
}

TEST(Tokenizer, QwenNonSpecialAddedTokensAlwaysMatch) {
  const Tokenizer& tok = testing_util::qwen3();
  const auto id = tok.token_to_id("<tool_call>");
  ASSERT_TRUE(id.has_value());
  EXPECT_FALSE(tok.is_special(*id));
  EXPECT_EQ(tok.encode("<tool_call>", false), std::vector<int32_t>{*id});
  const auto im_start = tok.token_to_id("<|im_start|>");
  ASSERT_TRUE(im_start.has_value());
  EXPECT_TRUE(tok.is_special(*im_start));
  EXPECT_EQ(tok.encode("<|im_start|>", true), std::vector<int32_t>{*im_start});
  EXPECT_GT(tok.encode("<|im_start|>", false).size(), 1u);
}

TEST(Tokenizer, TokenAccessors) {
  const Tokenizer& tok = testing_util::llama3();
  EXPECT_EQ(tok.vocab_size(), 128256);
  const auto hello = tok.token_to_id("Ġhello");
  ASSERT_TRUE(hello.has_value());
  EXPECT_EQ(tok.token_text(*hello), "Ġhello");
  EXPECT_EQ(tok.token_bytes(*hello), " hello");
  EXPECT_EQ(tok.encode(" hello", false), std::vector<int32_t>{*hello});
  EXPECT_EQ(tok.token_to_id("<|eot_id|>"), std::optional<int32_t>(128009));
  EXPECT_EQ(tok.token_bytes(128009), "<|eot_id|>");
  EXPECT_TRUE(tok.is_special(128009));
  EXPECT_FALSE(tok.is_special(*hello));
  EXPECT_FALSE(tok.is_special(-1));
  EXPECT_FALSE(tok.is_special(1 << 30));
  EXPECT_EQ(tok.token_bytes(-5), "");
  EXPECT_EQ(tok.token_to_id("no such token here"), std::nullopt);
  // Unknown ids are skipped by decode.
  const std::vector<int32_t> ids = {*hello, 999999999, -3};
  EXPECT_EQ(tok.decode(ids, false), " hello");
}

TEST(Tokenizer, DecodeReplacesInvalidUtf8) {
  const Tokenizer& tok = testing_util::llama3();
  // "é" is two bytes; its first byte alone is a token in a byte-level vocab.
  const std::vector<int32_t> ids = tok.encode("é", false);
  std::optional<int32_t> lead;
  for (int32_t id = 0; id < tok.vocab_size() && !lead; ++id) {
    if (tok.token_bytes(id) == "\xC3") lead = id;
  }
  ASSERT_TRUE(lead.has_value());
  const std::vector<int32_t> broken = {*lead, *tok.token_to_id("a")};
  EXPECT_EQ(tok.decode(broken, false), "\xEF\xBF\xBD" "a");
  EXPECT_EQ(tok.decode(ids, false), "é");
}

TEST(Tokenizer, LongWhitespaceRunIsFastAndRoundTrips) {
  const Tokenizer& tok = testing_util::llama3();
  const std::string text = std::string(100000, ' ') + "x" + std::string(50000, '\n');
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tok.encode(text, false);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(tok.decode(ids, false), text);
  // Quadratic merging would take minutes here.
  EXPECT_LT(s, kReleaseBuild ? 2.0 : 30.0);
}

TEST(Tokenizer, LoadErrors) {
  auto missing = Tokenizer::load_from_file("no/such/dir/tokenizer.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("no/such/dir/tokenizer.json"), std::string::npos);
  EXPECT_EQ(Tokenizer::load_from_json("{not json", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Tokenizer::load_from_json("[]", "x").status().code(), StatusCode::kInvalidArgument);
  // A pre-tokenizer regex we do not match by hand.
  const std::string other_regex = R"({"model": {"type": "BPE", "vocab": {}, "merges": []},
    "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated", "invert": false},
    "decoder": {"type": "ByteLevel"}})";
  auto r = Tokenizer::load_from_json(other_regex, "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("\\w+"), std::string::npos);
  const std::string other_normalizer = R"({"model": {"type": "BPE", "vocab": {}, "merges": []},
    "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"}})";
  EXPECT_EQ(Tokenizer::load_from_json(other_normalizer, "x").status().code(), StatusCode::kUnimplemented);
  // Byte-level vocab lacking byte tokens.
  const std::string no_bytes = R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
    "pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"}})";
  EXPECT_EQ(Tokenizer::load_from_json(no_bytes, "x").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kr

namespace kr {
namespace {

TEST(Tokenizer, WordCacheIsPerTokenizer) {
  // The per-thread word cache must not hand one tokenizer's ids to another.
  const Tokenizer& a = testing_util::llama3();
  const Tokenizer& b = testing_util::qwen3();
  const std::string text = "Tokenization caches repeated words: tokenization, caches, repeated, words.";
  const std::vector<int32_t> first_a = a.encode(text, false);
  const std::vector<int32_t> first_b = b.encode(text, false);
  EXPECT_NE(first_a, first_b);
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(a.encode(text, false), first_a);
    EXPECT_EQ(b.encode(text, false), first_b);
  }
  EXPECT_EQ(a.decode(first_a, false), text);
  EXPECT_EQ(b.decode(first_b, false), text);
}

}  // namespace
}  // namespace kr

namespace kr {
namespace {

// Random text from pieces that stress the pre-tokenizer and BPE.
std::string random_text(std::mt19937* rng) {
  static const char* kPieces[] = {"a", "Z", "hello", " ", "  ", "\n", "\r\n", "\t", "'s", "'LL", "123", "4567", ".",
                                  "!?", "é", "e\xCC\x81", "中文", "テ", "😀", "👍🏽", "ß", "ﬁ", "한", "\xE1\x84\x92\xE1\x85\xA1",
                                  "<|eot_id|>", "<|im_start|>", "<tool_call>", "<|", "|>", "\xC2\xA0", "\xE2\x80\x83"};
  std::string s;
  const size_t n = (*rng)() % 40;
  for (size_t i = 0; i < n; ++i) s += kPieces[(*rng)() % std::size(kPieces)];
  return s;
}

TEST(Tokenizer, RandomTextRoundTrips) {
  std::mt19937 rng(7);
  for (int i = 0; i < 500; ++i) {
    const std::string text = random_text(&rng);
    for (bool parse_special : {false, true}) {
      EXPECT_EQ(testing_util::llama3().decode(testing_util::llama3().encode(text, parse_special), false), text);
      // Qwen3 normalises to NFC first.
      EXPECT_EQ(testing_util::qwen3().decode(testing_util::qwen3().encode(text, parse_special), false),
                unicode::nfc(text));
    }
  }
}

TEST(Tokenizer, InvalidUtf8DoesNotCrash) {
  std::mt19937 rng(11);
  for (int i = 0; i < 200; ++i) {
    std::string bytes(rng() % 64, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    // Byte-level BPE keeps every byte, so the lossy decode of the input comes back.
    EXPECT_EQ(testing_util::llama3().decode(testing_util::llama3().encode(bytes, true), false),
              unicode::utf8_lossy(bytes));
    testing_util::qwen3().encode(bytes, true);  // NFC replaces invalid bytes; must not crash
  }
}

}  // namespace
}  // namespace kr
