// ChatPromptBuilder: chat messages -> prompt token ids, with what the client
// wrote kept plain. The template's own special tokens (<|start_header_id|>,
// <|im_end|>, <start_of_turn>, ...) become tokens; special-token text inside
// any client string (message contents, reasoning, names, tool-call ids and
// arguments, tool definitions, chat_template_kwargs) stays ordinary text, so a
// user who types "<|im_end|>" cannot inject a control token. Otherwise the
// rendering is encoded as one text, exactly as transformers'
// apply_chat_template(tokenize=True) does (for SentencePiece tokenizers the
// pieces must not be encoded apart: the normaliser's "▁" and merges run across
// content boundaries).
//
// How: before rendering, each special-token occurrence in a client string is
// replaced by a private marker (U+F0000, its index, U+F0001); after rendering
// the markers are put back and their spans are the plain spans of
// Tokenizer::encode_with_plain_spans. The template sees the same text
// everywhere except at those occurrences, so its control flow is unchanged
// unless it inspects special-token text in client strings. (A special token
// spelled half by the template and half by a client string, or by two client
// strings, is not caught; templates put their own text between these.)
//
// The template sees what transformers' apply_chat_template gets from vLLM:
// messages (chat_message.h: tool calls with their arguments parsed to JSON
// values), tools, add_generation_prompt, bos_token, eos_token, and the
// request's chat_template_kwargs (e.g. enable_thinking for Qwen3).
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

struct ChatPromptOptions {
  std::string tools_json;            // "tools": a JSON array text, "" when absent
  std::string template_kwargs_json;  // chat_template_kwargs: a JSON object text, "" when absent
  bool add_generation_prompt = true;
};

class ChatPromptBuilder {
 public:
  // `tok` must outlive the builder. bos/eos are the template's bos_token/eos_token strings.
  ChatPromptBuilder(const Tokenizer* tok, ChatTemplate tmpl, std::string bos_token, std::string eos_token);

  // InvalidArgument for a template error (raise_exception, e.g. roles out of
  // order), tool-call arguments that are not JSON, tools that are not a list,
  // kwargs that are not an object or that set messages / tools /
  // add_generation_prompt (those have their own request fields).
  StatusOr<ChatPrompt> build(const std::vector<ChatMessage>& messages, const ChatPromptOptions& options) const;
  // The same with only tools (the form callers used before kwargs).
  StatusOr<ChatPrompt> build(const std::vector<ChatMessage>& messages, const std::string& tools_json,
                             bool add_generation_prompt) const;
  // Only the rendering (no ids): e.g. to detect what a template emits.
  StatusOr<std::string> render(const std::vector<ChatMessage>& messages, const ChatPromptOptions& options) const;

 private:
  // The template context; with `protect`, special-token text in client
  // strings is replaced by markers whose originals go to *originals.
  StatusOr<std::string> render_with(const std::vector<ChatMessage>& messages, const ChatPromptOptions& options,
                                    std::vector<std::string>* originals) const;

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
