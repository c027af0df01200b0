// nlohmann JSON -> template Value. ordered_json keeps the caller's key order
// (what tojson prints); plain json has its keys sorted. Any thread.
// Throws TemplateError when the input nests deeper than 512 levels.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "tokenizer/jinja/value.h"

namespace kr::jinja {

Value from_json(const nlohmann::json& j);
Value from_json(const nlohmann::ordered_json& j);

}  // namespace kr::jinja
