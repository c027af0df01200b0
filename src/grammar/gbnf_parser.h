// GBNF (llama.cpp's grammar format) -> Grammar.
//
// The format (llama.cpp grammars/README.md): rules `name ::= alternatives`,
// a rule named `root` is the start; literals "..." and character classes
// [...] / [^...] over Unicode code points with escapes \xHH \uHHHH \UHHHHHHHH
// \t \r \n \\ \" \[ \] (\- \^ \/ \f \v also accepted); `.` any code point;
// grouping ( ); repetition * + ? {m} {m,} {m,n}; comments from # to the end
// of the line; a newline ends a rule except inside parentheses or after `|`.
// Token terminals (llama.cpp, 2025): `<[123]>` is token id 123 and
// `<|python_tag|>` the special token with that text; negated `!<...>` is refused.
// Refused with an error: undefined rules, a missing root, rules defined twice,
// left recursion (reported when the automaton is built).
//
// Pure function; any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "grammar/grammar_ir.h"

namespace kr::grammar {

struct GbnfLimits {
  size_t max_bytes = 256 * 1024;
  uint32_t max_nesting = 128;     // parentheses
  uint32_t max_repeat = 10000;    // bound of {m,n}
};

// Rules defined outside the text (by a JSON Schema, say): the text may use
// these names; parse_gbnf creates the rules (no body) and fills `rule`.
struct GbnfExternalRule {
  std::string name;
  uint32_t rule = 0;
};

StatusOr<Grammar> parse_gbnf(std::string_view text, const GbnfLimits& limits = {},
                             std::vector<GbnfExternalRule>* externals = nullptr);

}  // namespace kr::grammar
