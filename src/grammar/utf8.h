// UTF-8 helpers for the grammar front ends: code point classes lowered to
// byte-level expressions, and strict encoding/decoding. Only Unicode scalar
// values are produced (no surrogates, nothing above U+10FFFF), so every
// grammar built from code points accepts valid UTF-8 only.
//
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "grammar/grammar_ir.h"

namespace kr::grammar {

inline constexpr uint32_t kMaxCodepoint = 0x10FFFF;

struct CodepointRange {
  uint32_t lo = 0;
  uint32_t hi = 0;  // inclusive
};

// Sorted, merged, clipped to [0, U+10FFFF], surrogates removed.
std::vector<CodepointRange> normalize_ranges(std::vector<CodepointRange> ranges);
// Every scalar value not in `ranges` (which must be normalized).
std::vector<CodepointRange> complement_ranges(const std::vector<CodepointRange>& ranges);
// An expression matching the UTF-8 encoding of exactly one code point of the
// class (normalized ranges); kNothing for an empty class.
ExprId codepoint_class_expr(Grammar& g, const std::vector<CodepointRange>& ranges);

void append_utf8(std::string& out, uint32_t cp);
// Decodes one code point at `pos` (advanced past it); false on invalid UTF-8
// (overlong, surrogate, truncated, out of range).
bool decode_utf8(std::string_view s, size_t& pos, uint32_t& cp);
bool is_valid_utf8(std::string_view s);

}  // namespace kr::grammar
