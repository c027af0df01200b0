#include "tokenizer/chat_template.h"

#include <nlohmann/json.hpp>

#include "tokenizer/jinja/error.h"
#include "tokenizer/jinja/from_json.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/parser.h"

namespace kr {

StatusOr<ChatTemplate> ChatTemplate::parse(std::string_view source, jinja::RenderLimits limits) {
  try {
    auto tmpl = std::make_shared<jinja::Template>(jinja::parse_template(source));
    return ChatTemplate(std::move(tmpl), limits);
  } catch (const jinja::TemplateError& e) {
    return InvalidArgument(std::string("chat template: ") + e.what());
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("chat template: out of memory while parsing");
  } catch (const std::exception& e) {  // a bug: still no exception leaves the module
    return Internal(std::string("chat template: ") + e.what());
  }
}

template <typename Json>
StatusOr<std::string> ChatTemplate::render_impl(const Json& context) const {
  if (!context.is_object()) return InvalidArgument("chat template: the context must be a JSON object");
  try {
    return jinja::render_template(*tmpl_, jinja::from_json(context), limits_);
  } catch (const jinja::LimitError& e) {
    return ResourceExhausted(std::string("chat template: ") + e.what());
  } catch (const jinja::TemplateError& e) {
    return InvalidArgument(e.what());
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("chat template: out of memory while rendering");
  } catch (const std::exception& e) {  // a bug: still no exception leaves the module
    return Internal(std::string("chat template: ") + e.what());
  }
}

StatusOr<std::string> ChatTemplate::render(const nlohmann::ordered_json& context) const {
  return render_impl(context);
}

StatusOr<std::string> ChatTemplate::render(const nlohmann::json& context) const { return render_impl(context); }

namespace {

StatusOr<ChatTemplateConfig> read_config(std::string_view tokenizer_config_json, std::string_view name);

std::string token_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}

}  // namespace

StatusOr<ChatTemplateConfig> read_chat_template_config(std::string_view tokenizer_config_json, std::string_view name) {
  try {
    return read_config(tokenizer_config_json, name);
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("tokenizer_config.json: ") + e.what());
  }
}

namespace {
StatusOr<ChatTemplateConfig> read_config(std::string_view tokenizer_config_json, std::string_view name) {
  nlohmann::json j = nlohmann::json::parse(tokenizer_config_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("tokenizer_config.json is not a JSON object");
  ChatTemplateConfig cfg;
  if (j.contains("bos_token")) cfg.bos_token = token_text(j["bos_token"]);
  if (j.contains("eos_token")) cfg.eos_token = token_text(j["eos_token"]);
  if (!j.contains("chat_template")) return NotFound("tokenizer_config.json has no chat_template");
  const nlohmann::json& t = j["chat_template"];
  if (t.is_string()) {
    cfg.source = t.get<std::string>();
    return cfg;
  }
  if (t.is_array()) {
    for (const auto& entry : t) {
      if (entry.is_object() && entry.value("name", "") == name && entry.contains("template") &&
          entry["template"].is_string()) {
        cfg.source = entry["template"].get<std::string>();
        return cfg;
      }
    }
    return NotFound("tokenizer_config.json has no chat template named '" + std::string(name) + "'");
  }
  return InvalidArgument("chat_template in tokenizer_config.json is neither a string nor a list");
}
}  // namespace

}  // namespace kr
