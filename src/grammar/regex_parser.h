// Regular expressions -> Grammar expressions: the subset that JSON Schema
// `pattern` and vLLM `guided_regex` users write.
//
// Supported: literals and escapes (\n \t \r \f \v \0 \xHH \uHHHH \u{H..}
// \UHHHHHHHH, escaped punctuation), classes [...] [^...] with ranges, \d \w \s
// and their negations, `.` (any code point but the line terminators \n \r
// U+2028 U+2029), groups ( ) (?: )
// (?P<name> ) (?<name> ), alternation, quantifiers * + ? {m} {m,} {m,n} {,n}
// (lazy forms allowed: same language), anchors ^ \A at the start and $ \Z \z
// at the end of the pattern or of a top-level alternative.
// Refused with an error naming the construct: lookaround, backreferences,
// \b \B, inline flags, possessive quantifiers, \p{..}, POSIX classes, anchors
// elsewhere.
//
// Character semantics follow ECMA-262 (the JSON Schema dialect): \d \w \s are
// ASCII, which is also a subset of what Python's `re` accepts, so every string
// generated validates under either. Negated classes that contain \d \w \s (or
// their negations) are restricted to ASCII for the same reason.
//
// Pure functions; any thread.
#pragma once

#include <string_view>

#include "base/status.h"
#include "grammar/grammar_ir.h"
#include "grammar/utf8.h"

namespace kr::grammar {

struct RegexOptions {
  // Match the JSON string encoding of the text (the body of a JSON string
  // literal: `"` `\` and control characters escaped), as for `pattern`.
  bool json_string = false;
  // Search semantics (JSON Schema `pattern`): the pattern may match anywhere
  // in the text unless anchored. Otherwise the whole text must match.
  bool search = false;
  uint32_t max_repeat = 10000;
  uint32_t max_nesting = 128;
  size_t max_bytes = 64 * 1024;
};

StatusOr<ExprId> compile_regex(Grammar& g, std::string_view pattern, const RegexOptions& options = {});

// One code point of the class, JSON-string encoded (raw UTF-8, or the escape
// for `"` `\` and control characters). `ranges` normalized.
ExprId json_char_class_expr(Grammar& g, const std::vector<CodepointRange>& ranges);

}  // namespace kr::grammar
