// PromptCodec: text ⇄ ids for `kr-serve generate`, over the tokenizer module
// (tokenizer.json) and the model's chat template (tokenizer_config.json).
//
// Chat prompts keep the user's text plain: the template is rendered twice,
// once with the real content and once with a sentinel in its place. The
// sentinel rendering splits the template's own text into a prefix and a
// suffix; the real rendering must be prefix + content' + suffix (content'
// being the content as the template transformed it, e.g. trimmed). Prefix and
// suffix are encoded with special tokens parsed (they hold <|start_header_id|>
// etc.); content' is encoded with special tokens NOT parsed, so a user who
// types "<|eot_id|>" gets plain text tokens. The segments meet where the
// template puts special tokens or newlines, which are pre-tokenizer
// boundaries of byte-level BPE, so encoding them apart gives the same ids as
// encoding the whole (checked against the golden chat ids in the CLI test).
//
// Threading: one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace kr {

class PromptCodec {
 public:
  // Loads DIR/tokenizer.json and (when present) DIR/tokenizer_config.json's chat template.
  static StatusOr<std::unique_ptr<PromptCodec>> load(const std::string& model_dir);
  virtual ~PromptCodec() = default;

  // Text with special tokens parsed; `bos` prepended unless the text already starts with it.
  virtual StatusOr<std::vector<int32_t>> encode_plain(const std::string& text, std::optional<int32_t> bos) = 0;
  // One user message in the chat template, add_generation_prompt = true (see above).
  virtual StatusOr<std::vector<int32_t>> encode_chat_user(const std::string& content) = 0;
  // Generated ids to text, special tokens skipped.
  virtual StatusOr<std::string> decode(const std::vector<int32_t>& ids) = 0;
};

}  // namespace kr
