// Global functions of the template: range, namespace, dict (Jinja's globals) and
// raise_exception, strftime_now (added by transformers). Any thread.
#pragma once

#include <string>
#include <vector>

#include "tokenizer/jinja/call_site.h"

namespace kr::jinja {

bool is_builtin_function(const std::string& name);
// raise_exception throws TemplateError with the template's message (no line suffix).
// `owned_namespaces` collects namespace objects so the renderer can break any
// reference cycles through them when the render ends.
Value call_builtin(const std::string& name, const CallArgs& args, const CallSite& site,
                   std::vector<DictPtr>* owned_namespaces);

}  // namespace kr::jinja
