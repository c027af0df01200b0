// Jinja filters (`x | trim`, `tools | tojson(indent=4)`), as Jinja2 and
// transformers define them. Pure functions; any thread.
#pragma once

#include <string>

#include "tokenizer/jinja/call_site.h"

namespace kr::jinja {

bool is_known_filter(const std::string& name);
// Throws TemplateError on a bad argument or type.
Value apply_filter(const std::string& name, const Value& value, const CallArgs& args, const CallSite& site);

}  // namespace kr::jinja
