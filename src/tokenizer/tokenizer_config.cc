#include "tokenizer/tokenizer_config.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace kr {
namespace {

// A token field: "text", {"content": "text", ...}, or null/absent.
StatusOr<std::optional<std::string>> token_field(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::optional<std::string>();
  const nlohmann::json& v = j[key];
  if (v.is_string()) return std::optional<std::string>(v.get<std::string>());
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return std::optional<std::string>(v["content"].get<std::string>());
  }
  return InvalidArgument(std::string("tokenizer_config.json: ") + key + " is neither a string nor {content}");
}

}  // namespace

StatusOr<TokenizerConfig> parse_tokenizer_config(std::string_view json_text) {
  const nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("tokenizer_config.json is not a JSON object");
  TokenizerConfig c;
  KR_ASSIGN_OR_RETURN(c.bos_token, token_field(j, "bos_token"));
  KR_ASSIGN_OR_RETURN(c.eos_token, token_field(j, "eos_token"));
  for (const char* key : {"add_bos_token", "add_eos_token"}) {
    if (!j.contains(key)) continue;
    c.has_add_special_keys = true;
    if (j[key].is_null()) continue;
    if (!j[key].is_boolean()) return InvalidArgument(std::string("tokenizer_config.json: ") + key + " is not a bool");
    (std::string_view(key) == "add_bos_token" ? c.add_bos_token : c.add_eos_token) = j[key].get<bool>();
  }
  if (j.contains("chat_template") && !j["chat_template"].is_null()) {
    const nlohmann::json& t = j["chat_template"];
    if (t.is_string()) {
      c.chat_template = t.get<std::string>();
    } else if (t.is_array()) {
      for (const auto& e : t) {
        if (e.is_object() && e.value("name", std::string()) == "default" && e.contains("template") &&
            e["template"].is_string()) {
          c.chat_template = e["template"].get<std::string>();
        }
      }
    } else {
      return InvalidArgument("tokenizer_config.json: chat_template is neither a string nor a list");
    }
  }
  return c;
}

StatusOr<TokenizerConfig> read_tokenizer_config(const std::string& tokenizer_config_json_path) {
  std::ifstream in(tokenizer_config_json_path, std::ios::binary);
  if (!in) return NotFound("cannot open " + tokenizer_config_json_path);
  std::ostringstream ss;
  ss << in.rdbuf();
  StatusOr<TokenizerConfig> c = parse_tokenizer_config(ss.str());
  if (!c.ok()) return Status(c.status().code(), tokenizer_config_json_path + ": " + c.status().message());
  return c;
}

}  // namespace kr
