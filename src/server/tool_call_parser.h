// Tool calls in model output, for the formats chat templates teach, parsed
// into OpenAI's shape (name + arguments as a JSON string), whole or streamed;
// and the grammar that forces a tool call (tool_choice "required" or a named
// function) in the model's format.
//
// Formats:
//   kLlama3Json  Llama 3.1/3.2: the whole message is {"name": ..., "parameters"
//                (or "arguments"): {...}}, optionally after <|python_tag|>;
//                several calls may be separated by ';'. A message that does not
//                start that way is plain content.
//   kHermes      Qwen2.5/Qwen3 (Hermes style): any number of
//                <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>
//                blocks; text outside them is content.
//   kMistral     Mistral: content, then [TOOL_CALLS][{"name": ..., "arguments":
//                {...}, "id": ...}, ...], or the newer [TOOL_CALLS]name[ARGS]{...}
//                (repeated for several calls).
// Arguments are the model's own JSON text of the value (a JSON string value is
// decoded), so streamed pieces concatenate to exactly the non-streamed string.
//
// Threading: parse_tool_calls and build_tool_call_grammar are pure functions
// (any thread); a ToolCallStreamParser belongs to one generated choice and is
// used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "grammar/grammar_compiler.h"

namespace kr {

enum class ToolCallFormat : uint8_t { kLlama3Json, kHermes, kMistral };

const char* tool_call_format_name(ToolCallFormat format);
// The format a chat template teaches (nullopt: none recognized).
std::optional<ToolCallFormat> detect_tool_call_format(std::string_view chat_template);

struct ToolCall {
  std::string id;         // as the model wrote it (Mistral), else "" (the server assigns one)
  std::string name;
  std::string arguments;  // JSON text
};

struct ToolCallParse {
  std::string content;          // text outside the tool calls
  std::vector<ToolCall> calls;  // empty for a plain answer
};

ToolCallParse parse_tool_calls(ToolCallFormat format, std::string_view text);

// One piece of a streamed tool call, as OpenAI streams them: the first piece
// of call `index` has `opens` set and carries the name (and the model's id);
// later pieces carry more arguments text.
struct ToolCallDelta {
  size_t index = 0;
  bool opens = false;
  std::string id;
  std::string name;
  std::string arguments;
};

struct ToolCallStreamDelta {
  std::string content;
  std::vector<ToolCallDelta> calls;
  bool empty() const { return content.empty() && calls.empty(); }
};

class ToolCallStreamParser {
 public:
  explicit ToolCallStreamParser(ToolCallFormat format) : format_(format) {}
  // New output text; returns what can be sent now (text that may still turn
  // out to be part of a tool call is held back).
  ToolCallStreamDelta push(std::string_view text);
  // End of output: releases what was held back.
  ToolCallStreamDelta finish();
  // Calls opened so far (> 0: finish_reason "tool_calls").
  size_t num_calls() const { return calls_opened_; }

 private:
  enum class Mode { kStart, kContent, kOpenTag, kCall, kAfterCall, kMistralName, kPlain };
  void step(ToolCallStreamDelta& out, bool at_end);
  bool scan_call(ToolCallStreamDelta& out, bool at_end);
  void emit_content(ToolCallStreamDelta& out, size_t end);

  ToolCallFormat format_;
  Mode mode_ = Mode::kStart;
  std::string buf_;
  size_t pos_ = 0;          // buf_[0, pos_) has been handled
  size_t call_start_ = 0;   // start of the current call's JSON object
  bool call_open_ = false;  // its name was sent
  size_t args_sent_ = 0;    // bytes (or decoded bytes, for a string value) of arguments sent
  size_t calls_opened_ = 0;
  std::string mistral_name_;  // [TOOL_CALLS]name[ARGS] form: the name before [ARGS]
};

// The grammar that makes the output exactly a tool call in `format`: of the
// function named `function`, or of any function in `tools` when it is empty;
// several calls when `parallel` (and the format allows it). `tools_json` is
// the request's "tools" array. Parameters are constrained by each function's
// JSON schema (an error names a schema that does not compile). For Mistral,
// `mistral_tool_calls_token` is the id of the [TOOL_CALLS] control token
// (without it the text "[TOOL_CALLS]" is required instead).
StatusOr<grammar::GrammarSpec> build_tool_call_grammar(ToolCallFormat format, std::string_view tools_json,
                                                       std::string_view function, bool parallel,
                                                       std::optional<int32_t> mistral_tool_calls_token = {});

}  // namespace kr
