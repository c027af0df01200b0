// What a Hugging Face tokenizer_config.json says that others need: the
// bos/eos token strings, add_bos_token / add_eos_token and the chat template.
// Pure function: any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace kr {

struct TokenizerConfig {
  std::optional<std::string> bos_token;  // "bos_token": string or {"content": ...}
  std::optional<std::string> eos_token;
  std::optional<bool> add_bos_token;
  std::optional<bool> add_eos_token;
  // Whether the file has an add_bos_token or add_eos_token key at all (even
  // null): transformers then rebuilds the post-processor from them.
  bool has_add_special_keys = false;
  // "chat_template": a string, or a list of {name, template} of which the one
  // named "default" is taken. Empty when absent.
  std::string chat_template;
};

// Errors: NotFound (no file), InvalidArgument (not JSON / wrong field types).
StatusOr<TokenizerConfig> read_tokenizer_config(const std::string& tokenizer_config_json_path);
StatusOr<TokenizerConfig> parse_tokenizer_config(std::string_view json_text);

}  // namespace kr
