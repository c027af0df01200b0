// ChatPromptBuilder: chat messages -> prompt token ids, with the message
// contents kept plain. The template's own text (<|start_header_id|>,
// <|eot_id|>, ...) is encoded with special tokens parsed; what the client
// wrote is encoded with special tokens NOT parsed, so a user who types
// "<|eot_id|>" gets ordinary text tokens (no control-token injection).
//
// How the spans are found: the template is rendered twice, once with the real
// messages and once with each content replaced by a unique sentinel. The
// sentinel rendering cuts the template text into pieces T0 S_a T1 S_b ... T_k;
// the real rendering must be T0 c_a' T1 c_b' ... T_k, where c' is a content as
// the template printed it (as is, or trimmed, as Llama 3 does). Pieces and
// contents meet at special tokens or newlines, which are pre-tokenizer
// boundaries of byte-level BPE, so encoding them apart gives the same ids as
// encoding the whole rendering with specials parsed (tested).
//
// Used by the server (/v1/chat/completions) and by `kr-serve generate --chat`,
// so both turn the same messages into the same ids.
//
// Threading: immutable after construction; build() from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "tokenizer/chat_message.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"

namespace kr {

struct ChatPrompt {
  std::string text;           // the rendering (for logs and tests)
  std::vector<int32_t> ids;
};

class ChatPromptBuilder {
 public:
  // `tok` must outlive the builder. bos/eos are the template's bos_token/eos_token strings.
  ChatPromptBuilder(const Tokenizer* tok, ChatTemplate tmpl, std::string bos_token, std::string eos_token);

  // InvalidArgument for a template error (raise_exception, e.g. roles out of order).
  StatusOr<ChatPrompt> build(const std::vector<ChatMessage>& messages, const std::string& tools_json,
                             bool add_generation_prompt) const;

 private:
  StatusOr<std::string> render(const std::vector<ChatMessage>& messages, const std::vector<std::string>* replace,
                               const std::string& tools_json, bool add_generation_prompt) const;

  const Tokenizer* tok_;
  ChatTemplate tmpl_;
  std::string bos_token_, eos_token_;
};

// The builder for a model's tokenizer_config.json (bos/eos strings and chat
// template): null when the config has no chat template; the parse error
// (naming the construct and line) when the template does not parse.
// `tok` must outlive the builder.
StatusOr<std::unique_ptr<ChatPromptBuilder>> make_chat_prompt_builder(const Tokenizer* tok,
                                                                      const TokenizerConfig& config);

}  // namespace kr
