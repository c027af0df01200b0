// Unicode helpers for the tokenizer: UTF-8 decoding/encoding and validation,
// character classes for the pre-tokenizer, NFC normalisation. Pure functions
// over constant tables: any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kr::unicode {

// Decodes the code point at s[pos]; sets *len_bytes to the bytes consumed (≥ 1).
// An invalid or truncated sequence decodes as one byte yielding U+FFFD.
uint32_t decode_utf8(std::string_view s, size_t pos, size_t* len_bytes);
void append_utf8(uint32_t cp, std::string* out);

// Class flags (unicode_tables::ClassFlag bits) of a code point.
uint8_t class_flags(uint32_t cp);
inline bool is_letter(uint32_t cp) { return class_flags(cp) & 1; }
inline bool is_number(uint32_t cp) { return class_flags(cp) & 2; }
inline bool is_mark(uint32_t cp) { return class_flags(cp) & 4; }
inline bool is_whitespace(uint32_t cp) { return class_flags(cp) & 8; }
// Letter subcategory: 'u' (Lu), 'l' (Ll), 't' (Lt), 'm' (Lm), 'o' (Lo), or 0.
char letter_subcategory(uint32_t cp);

uint8_t combining_class(uint32_t cp);

// Canonical composition (NFC) of UTF-8 text. Invalid UTF-8 bytes become U+FFFD.
std::string nfc(std::string_view text);

// Whether `s` is entirely valid UTF-8 (no surrogates, no overlongs, ≤ U+10FFFF).
bool is_valid_utf8(std::string_view s);
// Length of the longest prefix of `s` that ends on a boundary where no later
// bytes can change how the prefix decodes: only a trailing incomplete (but so
// far valid) sequence is left out.
size_t complete_utf8_prefix(std::string_view s);
// Lossy UTF-8: each maximal invalid subpart becomes U+FFFD (as Rust's
// String::from_utf8_lossy and Hugging Face tokenizers do).
std::string utf8_lossy(std::string_view s);

}  // namespace kr::unicode
