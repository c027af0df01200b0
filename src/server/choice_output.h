// ChoiceOutput: one choice's generated text as a chat response shows it:
// reasoning_content (reasoning parser), content, and tool_calls (tool-call
// parser of the model's format), per OutputPlan. Streamed: push() each text
// delta and get what is final; finish() at the end. Whole: whole() on the
// complete text. Both run the same parsers (reasoning_parser.h,
// tool_call_parser.h), which agree streamed and whole.
//
// OpenAI's shapes (built by the generation): tool calls get ids
// "call_<24 hex>" unless the model wrote one (Mistral); a streamed call opens
// with {index, id, type: "function", function: {name, arguments: ""}} and
// continues with {index, function: {arguments: "..."}} pieces.
//
// Threading: one choice's, one thread at a time (the event pool's drain).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/reasoning_parser.h"
#include "server/structured_output.h"
#include "server/tool_call_parser.h"

namespace kr {

// A new tool-call id in OpenAI's form: "call_" and 24 hex digits.
std::string new_tool_call_id();

class ChoiceOutput {
 public:
  explicit ChoiceOutput(const OutputPlan& plan);

  // Whether this choice needs shaping at all (a reasoning parser or tool calls).
  static bool needed(const OutputPlan& plan) {
    return plan.reasoning != ReasoningParserKind::kNone || plan.tool_calls.has_value();
  }

  struct Delta {
    std::string reasoning;
    std::string content;
    std::vector<ToolCallDelta> calls;  // ids filled in on the opening piece
    bool empty() const { return reasoning.empty() && content.empty() && calls.empty(); }
  };
  Delta push(std::string_view text);
  Delta finish();

  struct Whole {
    std::optional<std::string> reasoning;  // nullopt: none
    std::string content;
    std::vector<ToolCall> calls;           // ids filled in
  };
  Whole whole(std::string_view text) const;

  // Tool calls seen so far (streamed): > 0 turns finish_reason "stop" into "tool_calls".
  size_t num_calls() const { return tools_ ? tools_->num_calls() : 0; }
  bool has_reasoning() const { return plan_reasoning_ != ReasoningParserKind::kNone; }

 private:
  void content_through_tools(std::string_view content, bool at_end, Delta* out);

  ReasoningParserKind plan_reasoning_;
  ReasoningStart start_;
  std::optional<ToolCallFormat> format_;
  std::optional<ReasoningState> reasoning_;
  std::optional<ToolCallStreamParser> tools_;
  std::vector<std::string> ids_;  // per streamed call index
};

}  // namespace kr
