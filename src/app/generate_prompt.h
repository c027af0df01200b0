// PromptCodec: what `kr-serve generate` loads to turn its prompt into ids and
// its output back into text: DIR/tokenizer.json and, when present,
// DIR/tokenizer_config.json's chat template (read_tokenizer_config). The
// prompt itself goes through admit_prompt (server/prompt.h), as the server's
// do, so `generate --chat` and /v1/chat/completions give the same ids for the
// same message (the user's text kept plain) and a plain prompt gets BOS the
// same way.
//
// Threading: immutable after load(); its methods from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "server/prompt.h"
#include "tokenizer/chat_prompt.h"
#include "tokenizer/tokenizer.h"

namespace kr {

class PromptCodec {
 public:
  // Loads DIR/tokenizer.json and, when the file exists, DIR/tokenizer_config.json's
  // chat template. Errors: the tokenizer's; InvalidArgument for a malformed
  // tokenizer_config.json or a chat template that does not parse.
  static StatusOr<std::unique_ptr<PromptCodec>> load(const std::string& model_dir);

  // The admission context over this codec's tokenizer and chat template.
  PromptContext context(std::optional<int32_t> bos_id, int32_t vocab_size, int32_t max_model_len) const;
  bool has_chat_template() const { return chat_ != nullptr; }
  const std::string& config_path() const { return config_path_; }  // DIR/tokenizer_config.json
  // Generated ids to text, special tokens skipped.
  std::string decode(const std::vector<int32_t>& ids) const;

 private:
  PromptCodec() = default;

  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<ChatPromptBuilder> chat_;  // null: no chat template
  std::string config_path_;
};

}  // namespace kr
