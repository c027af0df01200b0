// NFC, character classes and UTF-8 helpers, checked on tricky strings (the
// expected values come from Python's unicodedata, the generator's source).
#include "tokenizer/unicode.h"

#include <gtest/gtest.h>

namespace kr::unicode {
namespace {

TEST(Unicode, Classes) {
  EXPECT_TRUE(is_letter('a'));
  EXPECT_EQ(letter_subcategory('A'), 'u');
  EXPECT_EQ(letter_subcategory('a'), 'l');
  EXPECT_EQ(letter_subcategory(0x01C5), 't');  // Dž
  EXPECT_EQ(letter_subcategory(0x02B0), 'm');  // modifier letter small h
  EXPECT_EQ(letter_subcategory(0x4E2D), 'o');  // 中
  EXPECT_EQ(letter_subcategory('1'), 0);
  EXPECT_TRUE(is_number('7'));
  EXPECT_TRUE(is_number(0x0663));  // Arabic-Indic three
  EXPECT_TRUE(is_number(0x00BD));  // ½ (No)
  EXPECT_TRUE(is_number(0x2167));  // Roman numeral eight (Nl)
  EXPECT_FALSE(is_letter(0x0301));
  EXPECT_TRUE(is_mark(0x0301));
  EXPECT_TRUE(is_mark(0x093F));  // Devanagari vowel sign (Mc)
  for (uint32_t ws : {0x09u, 0x0Au, 0x0Bu, 0x0Cu, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x1680u, 0x2003u, 0x2028u, 0x3000u}) {
    EXPECT_TRUE(is_whitespace(ws)) << ws;
  }
  for (uint32_t not_ws : {0x1Cu, 0x200Bu, 0xFEFFu, 0x61u}) EXPECT_FALSE(is_whitespace(not_ws)) << not_ws;
  EXPECT_FALSE(is_letter(0x1F600));  // 😀 is So
  EXPECT_FALSE(is_number(0x1F600));
  EXPECT_EQ(class_flags(0x110000), 0);
}

TEST(Unicode, CombiningClass) {
  EXPECT_EQ(combining_class('a'), 0);
  EXPECT_EQ(combining_class(0x0301), 230);
  EXPECT_EQ(combining_class(0x0323), 220);
  EXPECT_EQ(combining_class(0x05B0), 10);
}

TEST(Unicode, Nfc) {
  EXPECT_EQ(nfc(""), "");
  EXPECT_EQ(nfc("plain ascii"), "plain ascii");
  EXPECT_EQ(nfc("e\xCC\x81"), "\xC3\xA9");                      // e + ◌́ -> é
  EXPECT_EQ(nfc("\xC3\xA9"), "\xC3\xA9");                       // already composed
  EXPECT_EQ(nfc("\xE2\x84\xAB"), "\xC3\x85");                   // Å (angstrom sign, singleton) -> Å
  EXPECT_EQ(nfc("\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB"), "한");  // conjoining jamo -> syllable
  EXPECT_EQ(nfc("\xED\x95\x9C"), "한");
  // Reordering: q + ◌̇ (230) + ◌̣ (220) -> q + ◌̣ + ◌̇ (no composite for q).
  EXPECT_EQ(nfc("q\xCC\x87\xCC\xA3"), "q\xCC\xA3\xCC\x87");
  // s + ◌̇ + ◌̣ -> ṩ (U+1E69): reorder, then compose both.
  EXPECT_EQ(nfc("s\xCC\x87\xCC\xA3"), "\xE1\xB9\xA9");
  // A blocked mark stays: a + ◌̈ + ◌̈ -> ä + ◌̈.
  EXPECT_EQ(nfc("a\xCC\x88\xCC\x88"), "\xC3\xA4\xCC\x88");
  // Composition exclusion: U+0958 (क़) stays decomposed.
  EXPECT_EQ(nfc("\xE0\xA5\x98"), "\xE0\xA4\x95\xE0\xA4\xBC");
  // Mixed text keeps everything else.
  EXPECT_EQ(nfc("Cafe\xCC\x81 \xF0\x9F\x98\x80 \xE4\xB8\xAD\xE6\x96\x87"), "Caf\xC3\xA9 \xF0\x9F\x98\x80 中文");
  // A leading combining mark stays.
  EXPECT_EQ(nfc("\xCC\x81x"), "\xCC\x81x");
}

TEST(Unicode, Utf8Validation) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xC3"));
  EXPECT_FALSE(is_valid_utf8("\xC0\x80"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\x80"));
  EXPECT_EQ(complete_utf8_prefix("ab\xE2\x82"), 2u);
  EXPECT_EQ(complete_utf8_prefix("ab\xE2\x82\xAC"), 5u);
  EXPECT_EQ(complete_utf8_prefix("ab\xC0"), 3u);  // never valid: nothing to wait for
  EXPECT_EQ(complete_utf8_prefix("\xF0\x9F\x98"), 0u);
}

TEST(Unicode, LossyMatchesMaximalSubparts) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8_lossy("ok"), "ok");
  EXPECT_EQ(utf8_lossy("\xC3"), r);
  EXPECT_EQ(utf8_lossy("\xF0\x9F\x98" "a"), r + "a");  // one replacement for a truncated sequence
  EXPECT_EQ(utf8_lossy("\xC0\x80"), r + r);            // C0 is never a lead byte
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), r + r + r);    // surrogates: each byte
  EXPECT_EQ(utf8_lossy("\xE2\x82" "\xE2\x82\xAC"), r + "€");
}

TEST(Unicode, DecodeAndAppend) {
  const std::string s = "a\xC3\xA9\xF0\x9F\x98\x80\xFF";
  size_t n = 0;
  EXPECT_EQ(decode_utf8(s, 0, &n), 'a');
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(decode_utf8(s, 1, &n), 0xE9u);
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(decode_utf8(s, 3, &n), 0x1F600u);
  EXPECT_EQ(n, 4u);
  EXPECT_EQ(decode_utf8(s, 7, &n), 0xFFFDu);
  EXPECT_EQ(n, 1u);
  std::string out;
  for (uint32_t cp : {0x41u, 0xE9u, 0x20ACu, 0x1F600u}) append_utf8(cp, &out);
  EXPECT_EQ(out, "A\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
}

}  // namespace
}  // namespace kr::unicode
