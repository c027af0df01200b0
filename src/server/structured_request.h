// The request fields of structured outputs and tool calling, parsed into
// OpenAIRequest (called by parse_openai_request):
//   - one output constraint at most (OutputConstraint):
//       response_format {"type": "text" | "json_object" | "json_schema",
//                        "json_schema": {"name", "schema", "strict"}}
//         (llama-server also puts "schema" directly in response_format);
//       vLLM: guided_json (schema object or its text), guided_regex,
//         guided_choice (strings), guided_grammar (GBNF), and the newer
//         structured_outputs {"json" | "regex" | "choice" | "grammar" | "json_object"};
//       llama-server: grammar (GBNF), json_schema (object);
//   - chat only: tools [{"type": "function", "function": {"name", "description",
//     "parameters"}}], tool_choice ("none" | "auto" | "required" |
//     {"type": "function", "function": {"name"}}), parallel_tool_calls,
//     chat_template_kwargs (an object).
// Errors are 400s naming the field, with a code (api error "code"):
//   invalid_response_format, conflicting_output_constraints, invalid_choice,
//   invalid_tools, invalid_tool_choice, tool_not_found.
// The constraint is only parsed here; it is compiled against the model's
// vocabulary when the request is admitted (structured_output.h), where
// schema, regex and grammar errors come from.
//
// Threading: pure functions; any thread.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "server/api_error.h"
#include "server/openai_request.h"

namespace kr {

bool parse_structured_fields(const nlohmann::json& body, bool chat, OpenAIRequest* out, ApiError* err);

}  // namespace kr
