// libFuzzer target: the Jinja-subset chat-template interpreter. The input is
// split at the first NUL: before it a template source, after it a JSON messages
// array (used with the real Llama 3.1 template when valid). Parse errors and
// render errors are fine; crashes, hangs and unbounded output are not.
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.h"

namespace {
const kr::ChatTemplate* llama_template() {
  static const kr::ChatTemplate* t = [] {
    std::ifstream f(KR_SOURCE_DIR "/models/tiny-llama3/tokenizer_config.json");
    std::stringstream ss;
    ss << f.rdbuf();
    auto cfg = nlohmann::json::parse(ss.str());
    auto parsed = kr::ChatTemplate::parse(cfg["chat_template"].get<std::string>());
    if (!parsed.ok()) std::abort();
    return new kr::ChatTemplate(std::move(parsed).value());
  }();
  return t;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view source = input.substr(0, nul);
  nlohmann::json ctx = {{"messages", nlohmann::json::array({{{"role", "user"}, {"content", "hi"}}})},
                        {"add_generation_prompt", true},
                        {"bos_token", "<|begin_of_text|>"},
                        {"eos_token", "<|eot_id|>"}};
  if (nul != std::string_view::npos) {
    auto messages = nlohmann::json::parse(input.substr(nul + 1), nullptr, /*allow_exceptions=*/false);
    if (!messages.is_discarded()) {
      ctx["messages"] = messages;
      (void)llama_template()->render(ctx);
    }
  }
  auto tmpl = kr::ChatTemplate::parse(source);
  if (tmpl.ok()) (void)tmpl->render(ctx);
  return 0;
}
