// PromptCodec: text ⇄ ids for `kr-serve generate`, over the tokenizer module:
// DIR/tokenizer.json, and DIR/tokenizer_config.json (read_tokenizer_config)
// for the chat template.
//
// --chat prompts go through the server's ChatPromptBuilder
// (tokenizer/chat_prompt.h), so `generate --chat` and /v1/chat/completions
// give the same ids for the same message, with the user's text kept plain (a
// user who types "<|eot_id|>" gets text tokens).
//
// Threading: immutable after load(); its methods from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "tokenizer/chat_prompt.h"
#include "tokenizer/tokenizer.h"

namespace kr {

class PromptCodec {
 public:
  // Loads DIR/tokenizer.json and, when the file exists, DIR/tokenizer_config.json's
  // chat template. Errors: the tokenizer's; InvalidArgument for a malformed
  // tokenizer_config.json or a chat template that does not parse.
  static StatusOr<std::unique_ptr<PromptCodec>> load(const std::string& model_dir);

  // Text with special tokens parsed; `bos` prepended unless the text already starts with it.
  std::vector<int32_t> encode_plain(const std::string& text, std::optional<int32_t> bos) const;
  // One user message in the chat template, add_generation_prompt = true.
  // FailedPrecondition when the model has no chat template.
  StatusOr<std::vector<int32_t>> encode_chat_user(const std::string& content) const;
  // Generated ids to text, special tokens skipped.
  std::string decode(const std::vector<int32_t>& ids) const;

 private:
  PromptCodec() = default;

  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<ChatPromptBuilder> chat_;  // null: no chat template
  std::string config_path_;                  // for error messages
};

}  // namespace kr
