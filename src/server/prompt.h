// admit_prompt: the one way a prompt becomes token ids, for every route that
// takes one (/v1/chat/completions, /v1/completions, /tokenize) and for
// `kr-serve generate`:
//  - chat messages go through the model's chat template (ChatPromptBuilder:
//    message contents stay plain text);
//  - text is encoded with special tokens parsed and, unless add_special_tokens
//    is false, BOS is added in front unless the text already starts with it;
//  - token ids are taken as given (each must be in the vocabulary);
//  - for a generation, prompt + max_tokens is checked against the one context
//    limit (check_context_length, engine/request.h: the same check and message
//    Engine::submit applies), and an absent max_tokens becomes the room left.
// No JSON and no HTTP here: the server maps the Status to an OpenAI error.
//
// Threading: pure function over immutable state; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "tokenizer/chat_message.h"

namespace kr {

class Tokenizer;
class ChatPromptBuilder;

// What admission needs of the model; fixed once the model is loaded.
struct PromptContext {
  const Tokenizer* tokenizer = nullptr;
  const ChatPromptBuilder* chat = nullptr;  // null: the model has no chat template
  std::optional<int32_t> bos_id;
  int32_t vocab_size = 0;
  int32_t max_model_len = 0;                // the context limit (Engine::max_model_len())
};

struct PromptInput {
  // Exactly one source.
  const std::vector<ChatMessage>* messages = nullptr;
  const std::string* text = nullptr;
  const std::vector<int32_t>* ids = nullptr;
  // Chat only.
  std::string tools_json;  // "tools" as JSON array text, "" when absent
  bool add_generation_prompt = true;
  // Text only: add BOS unless the text starts with it.
  bool add_special_tokens = true;
  // A generation checks the context and settles max_tokens; /tokenize does not.
  bool generation = true;
  std::optional<int32_t> max_tokens;  // nullopt: the room the context leaves
};

struct AdmittedPrompt {
  std::vector<int32_t> ids;
  int32_t max_tokens = 0;  // generation: as requested, or the room left; else 0
};

// Errors: FailedPrecondition (messages, but no chat template), the template's
// error (a template that cannot render these messages), InvalidArgument (a
// token id outside the vocabulary; a generation whose prompt has no tokens),
// OutOfRange (a generation past the context limit).
StatusOr<AdmittedPrompt> admit_prompt(const PromptInput& in, const PromptContext& ctx);

}  // namespace kr
