// One chat message as the chat template sees it. Its own header so that
// request parsing (server/openai_request.h) can name it without pulling in
// the tokenizer and template headers. Plain struct; any thread.
#pragma once

#include <optional>
#include <string>

namespace kr {

struct ChatMessage {
  std::string role;                    // system | user | assistant | tool | developer
  std::optional<std::string> content;  // text parts joined; nullopt for null (assistant with tool_calls)
  std::string extra_json;              // other fields (name, tool_calls, tool_call_id) as a JSON object
};

}  // namespace kr
