// ChatTemplate: renders the `chat_template` of a Hugging Face tokenizer_config.json
// the way transformers' apply_chat_template does (Jinja2 with trim_blocks and
// lstrip_blocks, plus raise_exception, strftime_now and transformers' tojson).
// It interprets the subset of Jinja2 that the Llama 3.x, Qwen2.5/3, Gemma 3 and
// Mistral templates use (see jinja/); anything else fails at parse() with the
// construct and its line.
//
// Threads: parse() from any thread; render() is const and keeps no state
// between calls, so any number of threads may render one ChatTemplate at once.
// With the default limits a render needs less than 128 KiB of thread stack.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "base/status.h"
#include "tokenizer/jinja/limits.h"

namespace kr {

namespace jinja {
struct Template;
}

class ChatTemplate {
 public:
  // Parse once; errors name the construct and line ("unsupported filter 'foo' at line 3").
  static StatusOr<ChatTemplate> parse(std::string_view source, jinja::RenderLimits limits = {});

  // Render with a context: {"messages": [...], "add_generation_prompt": bool, "bos_token": "...",
  // "eos_token": "...", "tools": [...]?, plus any extra kwargs}. Errors (raise_exception, type
  // errors, undefined values used as values) come back as InvalidArgument with the message;
  // a limit hit (output size, loop iterations, macro depth) as ResourceExhausted.
  // Prefer the ordered_json overload: tojson prints object keys in the caller's order only
  // when the JSON kept it (nlohmann::json sorts keys).
  StatusOr<std::string> render(const nlohmann::ordered_json& context) const;
  StatusOr<std::string> render(const nlohmann::json& context) const;

 private:
  explicit ChatTemplate(std::shared_ptr<const jinja::Template> tmpl, jinja::RenderLimits limits)
      : tmpl_(std::move(tmpl)), limits_(limits) {}
  template <typename Json>
  StatusOr<std::string> render_impl(const Json& context) const;

  std::shared_ptr<const jinja::Template> tmpl_;  // immutable after parse
  jinja::RenderLimits limits_;
};

// What a tokenizer_config.json says about chat formatting.
struct ChatTemplateConfig {
  std::string source;     // the Jinja template text
  std::string bos_token;  // "" when absent
  std::string eos_token;  // "" when absent
};

// Reads chat_template (a string, or a list of {name, template} from which `name`
// is taken), and bos_token / eos_token (a string or an object with "content").
StatusOr<ChatTemplateConfig> read_chat_template_config(std::string_view tokenizer_config_json,
                                                       std::string_view name = "default");

}  // namespace kr
