// Interpreter: renders a parsed Template with a context. Each call owns all of
// its state, so any number of threads may render one Template at once.
#pragma once

#include <string>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/limits.h"

namespace kr::jinja {

// `context` must be a dict; its entries are the template's global variables.
// Throws TemplateError (render errors, raise_exception) or LimitError.
std::string render_template(const Template& tmpl, const Value& context, const RenderLimits& limits);

}  // namespace kr::jinja
