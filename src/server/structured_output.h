// Structured outputs, tool calls and reasoning for one request: from the
// parsed request (OpenAIRequest: constraint, tools, tool_choice) and its
// rendered chat prompt to an OutputPlan: the grammar the engine enforces
// token by token, when it starts, and how the output text is split into
// reasoning_content, content and tool_calls (choice_output.h).
//
//  - constraint (response_format, guided_*, grammar, json_schema): compiled
//    for the model's vocabulary (GrammarCompiler, cached by spec);
//  - tools with tool_choice "required" or a named function: the grammar of a
//    call in the model's tool-call format whose arguments follow the
//    function's parameter schema (build_tool_call_grammar); with "auto" the
//    output is free and parsed; with "none" it is not parsed;
//  - reasoning parser on (chat only): the output is split at "</think>"; a
//    grammar then applies only after it (vLLM's rule), unless the prompt
//    already closed the block (Qwen3 with enable_thinking false).
// Every problem is a 400 with a code: invalid_json_schema,
// unsupported_json_schema_keyword, invalid_regex, invalid_grammar,
// invalid_choice, grammar_accepts_nothing (including a grammar no token of
// the vocabulary can start), grammar_too_large (the compiler's limits: 256 KiB
// of schema, 64 levels), invalid_tools, tool_calls_unsupported (no tool-call
// format for this model).
//
// Threading: StructuredOutputConfig is built once at startup and then read
// by any thread (the compiler is thread-safe); plan_output from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "grammar/grammar_compiler.h"
#include "server/api_error.h"
#include "server/openai_request.h"
#include "server/reasoning_parser.h"
#include "server/tool_call_parser.h"

namespace kr {

struct StructuredOutputConfig {
  std::shared_ptr<grammar::GrammarCompiler> compiler;  // over the model's vocabulary
  std::optional<ToolCallFormat> tool_format;           // --tool-call-parser, else the chat template's
  std::optional<int32_t> mistral_tool_calls_token;     // Mistral: the [TOOL_CALLS] control token
  ReasoningParserKind reasoning = ReasoningParserKind::kNone;  // --reasoning-parser, else the template's
  std::string reasoning_end = "</think>";
};

struct OutputPlan {
  std::shared_ptr<const grammar::CompiledGrammar> grammar;  // null: free output
  std::string grammar_trigger;  // non-empty: the grammar applies after this text (the end of reasoning)
  std::optional<ToolCallFormat> tool_calls;  // parse tool calls out of the content in this format
  ReasoningParserKind reasoning = ReasoningParserKind::kNone;
  ReasoningStart reasoning_start = ReasoningStart::kMayOpen;
};

// `chat_text`: the rendered chat prompt (AdmittedPrompt::chat_text; "" for completions).
bool plan_output(const StructuredOutputConfig& config, const OpenAIRequest& req, const std::string& chat_text,
                 OutputPlan* plan, ApiError* err);

// A compile error of a constraint from `param` as a 400 with its code.
ApiError grammar_error(const Status& status, grammar::GrammarKind kind, const std::string& param);

}  // namespace kr
