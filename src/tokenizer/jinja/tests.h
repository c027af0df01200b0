// Jinja tests (`x is defined`, `n is even`, `x is equalto y`). Pure functions.
#pragma once

#include <string>

#include "tokenizer/jinja/call_site.h"

namespace kr::jinja {

bool is_known_test(const std::string& name);
// Throws TemplateError on a bad argument.
bool apply_test(const std::string& name, const Value& value, const CallArgs& args, const CallSite& site);

}  // namespace kr::jinja
