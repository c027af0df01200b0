// Python methods the templates call on values: str (strip, split, startswith,
// format, ...) and dict (get, items, keys, values). Mutating methods (append,
// update, pop) are absent, as in transformers' immutable sandbox. Any thread.
#pragma once

#include <optional>
#include <string>

#include "tokenizer/jinja/call_site.h"

namespace kr::jinja {

// nullopt when `obj` has no method `name`; throws TemplateError on bad arguments.
std::optional<Value> call_method(const Value& obj, const std::string& name, const CallArgs& args,
                                 const CallSite& site);

}  // namespace kr::jinja
