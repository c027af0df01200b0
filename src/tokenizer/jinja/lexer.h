// Lexer: splits template source into text and tag tokens, applying Jinja's
// whitespace control the way transformers configures it (trim_blocks=True,
// lstrip_blocks=True, plus the per-tag "-" and "+" modifiers; newlines
// normalised to "\n" and one trailing newline dropped). Pure function.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kr::jinja {

enum class TokenType {
  kText,        // literal template text (after whitespace control)
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,      // value holds the unescaped string
  kInt,
  kFloat,
  kOperator,    // value holds the operator text: + - ( [ == // ...
  kEnd,         // end of source
};

struct Token {
  TokenType type;
  std::string value;
  int line;
};

// Throws TemplateError on an unterminated tag, comment or string.
std::vector<Token> tokenize(std::string_view source);

}  // namespace kr::jinja
