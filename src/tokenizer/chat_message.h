// One chat message as the chat template sees it. Its own header so that
// request parsing (server/openai_request.h) can name it without pulling in
// the tokenizer and template headers. Plain structs; any thread.
//
// The prompt builder (chat_prompt.h) turns a message into the template's
// dict as vLLM does for transformers' apply_chat_template:
//   {"role", "content" (null when absent), "reasoning_content"?, "name"?,
//    "tool_calls"?: [{"id", "type", "function": {"name", "arguments": OBJECT}}],
//    "tool_call_id"?} plus the fields of extra_json.
// Tool-call arguments arrive as JSON text (OpenAI sends a string) and reach
// the template as the parsed value (an empty string as {}), so that templates
// can print them with tojson or iterate over them.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kr {

struct ChatToolCall {
  std::string id;              // "" when absent (then no "id" key)
  std::string type = "function";
  std::string name;            // function.name
  std::string arguments_json;  // function.arguments: JSON text ("" -> {})
};

struct ChatMessage {
  std::string role;                    // system | user | assistant | tool | developer
  std::optional<std::string> content;  // text parts joined; nullopt for null (assistant with tool_calls)
  std::optional<std::string> reasoning_content;  // assistant: reasoning of an earlier turn
  std::string name;                    // "" when absent
  std::vector<ChatToolCall> tool_calls;  // assistant
  std::string tool_call_id;            // tool: the call it answers ("" when absent)
  // Any other fields as a JSON object text ("" for none), merged into the
  // message after the fields above (a key there replaces one set above;
  // tool_calls given here get the same argument parsing).
  std::string extra_json;
};

}  // namespace kr
