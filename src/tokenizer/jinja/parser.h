// Parser: tokens -> syntax tree. Rejects, with the construct and its line, any
// statement, filter or test the interpreter does not implement, so a template
// fails at load time rather than at the first request that reaches the construct.
#pragma once

#include <string_view>

#include "tokenizer/jinja/ast.h"

namespace kr::jinja {

// Nesting deeper than this (brackets, blocks) is rejected: a hostile template
// must not overflow the stack of the parser or of the renderer.
inline constexpr int kMaxParseDepth = 100;

// Throws TemplateError ("unsupported filter 'foo' at line 3").
Template parse_template(std::string_view source);

}  // namespace kr::jinja
