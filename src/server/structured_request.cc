#include "server/structured_request.h"

#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace kr {
namespace {

using json = nlohmann::json;

const json* field(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

bool fail(ApiError* err, const std::string& param, const std::string& code, const std::string& message) {
  *err = bad_param(param, message);
  err->code = code;
  return false;
}

// A JSON Schema given as an object (or a boolean schema), or, where `text_ok`,
// as its JSON text (vLLM accepts guided_json as either).
bool schema_text(const json& v, const std::string& param, bool text_ok, std::string* out, ApiError* err) {
  if (v.is_object() || v.is_boolean()) {
    *out = v.dump();
    return true;
  }
  if (text_ok && v.is_string()) {
    *out = v.get<std::string>();
    return true;
  }
  return fail(err, param, "invalid_json_schema",
              "'" + param + "' must be a JSON Schema object" + std::string(text_ok ? " or its JSON text" : ""));
}

bool string_field(const json& v, const std::string& param, const std::string& code, std::string* out, ApiError* err) {
  if (!v.is_string()) return fail(err, param, code, "'" + param + "' must be a string");
  *out = v.get<std::string>();
  return true;
}

bool choices(const json& v, const std::string& param, std::vector<std::string>* out, ApiError* err) {
  if (!v.is_array() || v.empty()) return fail(err, param, "invalid_choice", "'" + param + "' must be a non-empty array of strings");
  for (const json& c : v) {
    if (!c.is_string()) return fail(err, param, "invalid_choice", "'" + param + "' must be a non-empty array of strings");
    out->push_back(c.get<std::string>());
  }
  return true;
}

// response_format -> a constraint, or none for {"type": "text"}.
bool parse_response_format(const json& rf, std::optional<OutputConstraint>* out, ApiError* err) {
  const std::string p = "response_format";
  if (!rf.is_object()) return fail(err, p, "invalid_response_format", "'response_format' must be an object");
  const json* type = field(rf, "type");
  if (type == nullptr || !type->is_string())
    return fail(err, p + ".type", "invalid_response_format",
                "'response_format.type' must be \"text\", \"json_object\" or \"json_schema\"");
  const std::string t = type->get<std::string>();
  if (t == "text") return true;
  OutputConstraint c;
  c.param = p;
  if (t == "json_object") {
    // llama-server: {"type": "json_object", "schema": {...}} constrains to the schema.
    if (const json* schema = field(rf, "schema")) {
      std::string text;
      if (!schema_text(*schema, p + ".schema", false, &text, err)) return false;
      c.spec = grammar::GrammarSpec::json_schema(std::move(text));
    } else {
      c.spec = grammar::GrammarSpec::json_object();
    }
    *out = std::move(c);
    return true;
  }
  if (t != "json_schema")
    return fail(err, p + ".type", "invalid_response_format",
                "response_format type '" + t + "' is not supported (\"text\", \"json_object\" or \"json_schema\")");
  const json* schema = nullptr;
  std::string schema_param;
  if (const json* js = field(rf, "json_schema")) {
    if (!js->is_object())
      return fail(err, p + ".json_schema", "invalid_response_format",
                  "'response_format.json_schema' must be an object {\"name\", \"schema\", \"strict\"}");
    if (const json* name = field(*js, "name"); name != nullptr && !name->is_string())
      return fail(err, p + ".json_schema.name", "invalid_response_format", "'response_format.json_schema.name' must be a string");
    if (const json* strict = field(*js, "strict"); strict != nullptr && !strict->is_boolean())
      return fail(err, p + ".json_schema.strict", "invalid_response_format",
                  "'response_format.json_schema.strict' must be a boolean");
    schema = field(*js, "schema");
    schema_param = p + ".json_schema.schema";
  }
  if (schema == nullptr) {  // llama-server's form: {"type": "json_schema", "schema": {...}}
    schema = field(rf, "schema");
    schema_param = p + ".schema";
  }
  if (schema == nullptr)
    return fail(err, p + ".json_schema.schema", "invalid_response_format",
                "response_format of type \"json_schema\" needs 'json_schema': {\"name\": ..., \"schema\": {...}}");
  std::string text;
  if (!schema_text(*schema, schema_param, false, &text, err)) return false;
  c.spec = grammar::GrammarSpec::json_schema(std::move(text));
  c.param = schema_param;
  *out = std::move(c);
  return true;
}

// One vLLM / llama-server field of kind `key` (named `param` in errors) -> a constraint.
bool parse_constraint_field(const std::string& key, const std::string& param, const json& v, OutputConstraint* c,
                            ApiError* err) {
  c->param = param;
  std::string text;
  if (key == "guided_json" || key == "json_schema") {
    if (!schema_text(v, param, key == "guided_json", &text, err)) return false;
    c->spec = grammar::GrammarSpec::json_schema(std::move(text));
  } else if (key == "guided_regex") {
    if (!string_field(v, param, "invalid_regex", &text, err)) return false;
    c->spec = grammar::GrammarSpec::regex(std::move(text));
  } else if (key == "guided_choice") {
    std::vector<std::string> list;
    if (!choices(v, param, &list, err)) return false;
    c->spec = grammar::GrammarSpec::choices_of(std::move(list));
  } else {  // guided_grammar, grammar
    if (!string_field(v, param, "invalid_grammar", &text, err)) return false;
    c->spec = grammar::GrammarSpec::gbnf(std::move(text));
  }
  return true;
}

// vLLM's structured_outputs: {"json" | "regex" | "choice" | "grammar" | "json_object": true}.
bool parse_structured_outputs(const json& so, std::vector<OutputConstraint>* found, ApiError* err) {
  const std::string p = "structured_outputs";
  if (!so.is_object()) return fail(err, p, "invalid_response_format", "'structured_outputs' must be an object");
  static const std::pair<const char*, const char*> kKeys[] = {
      {"json", "guided_json"}, {"regex", "guided_regex"}, {"choice", "guided_choice"}, {"grammar", "guided_grammar"}};
  for (const auto& [key, as] : kKeys) {
    const json* v = field(so, key);
    if (v == nullptr) continue;
    OutputConstraint c;
    if (!parse_constraint_field(as, p + "." + key, *v, &c, err)) return false;
    found->push_back(std::move(c));
  }
  if (const json* jo = field(so, "json_object")) {
    if (!jo->is_boolean()) return fail(err, p + ".json_object", "invalid_response_format", "'structured_outputs.json_object' must be a boolean");
    if (jo->get<bool>()) {
      OutputConstraint c;
      c.param = p + ".json_object";
      c.spec = grammar::GrammarSpec::json_object();
      found->push_back(std::move(c));
    }
  }
  return true;
}

bool parse_constraint(const json& j, OpenAIRequest* out, ApiError* err) {
  std::vector<OutputConstraint> found;
  if (const json* rf = field(j, "response_format")) {
    std::optional<OutputConstraint> c;
    if (!parse_response_format(*rf, &c, err)) return false;
    if (c) found.push_back(std::move(*c));
  }
  for (const char* key : {"guided_json", "guided_regex", "guided_choice", "guided_grammar", "grammar", "json_schema"}) {
    const json* v = field(j, key);
    if (v == nullptr) continue;
    OutputConstraint c;
    if (!parse_constraint_field(key, key, *v, &c, err)) return false;
    found.push_back(std::move(c));
  }
  if (const json* so = field(j, "structured_outputs"))
    if (!parse_structured_outputs(*so, &found, err)) return false;
  if (found.size() > 1)
    return fail(err, found[1].param, "conflicting_output_constraints",
                "only one output constraint may be given, got '" + found[0].param + "' and '" + found[1].param + "'");
  if (!found.empty()) out->constraint = std::move(found[0]);
  return true;
}

bool parse_tools(const json& j, OpenAIRequest* out, ApiError* err) {
  const json* tools = field(j, "tools");
  if (tools != nullptr) {
    if (!tools->is_array()) return fail(err, "tools", "invalid_tools", "'tools' must be an array");
    std::set<std::string> seen;
    for (size_t i = 0; i < tools->size(); ++i) {
      const json& t = (*tools)[i];
      const std::string p = "tools[" + std::to_string(i) + "]";
      if (!t.is_object()) return fail(err, p, "invalid_tools", "each tool must be an object {\"type\": \"function\", \"function\": {...}}");
      if (const json* type = field(t, "type"); type == nullptr || *type != "function")
        return fail(err, p + ".type", "invalid_tools", "'" + p + ".type' must be \"function\"");
      const json* f = field(t, "function");
      if (f == nullptr || !f->is_object())
        return fail(err, p + ".function", "invalid_tools", "'" + p + ".function' must be an object {\"name\", \"parameters\"}");
      const json* name = field(*f, "name");
      if (name == nullptr || !name->is_string() || name->get<std::string>().empty())
        return fail(err, p + ".function.name", "invalid_tools", "'" + p + ".function.name' must be a non-empty string");
      const std::string n = name->get<std::string>();
      if (n.size() > 64)
        return fail(err, p + ".function.name", "invalid_tools", "'" + p + ".function.name' is longer than 64 characters");
      if (!seen.insert(n).second)
        return fail(err, p + ".function.name", "invalid_tools", "two tools are named '" + n + "'");
      if (const json* params = field(*f, "parameters"); params != nullptr && !params->is_object() && !params->is_boolean())
        return fail(err, p + ".function.parameters", "invalid_tools",
                    "'" + p + ".function.parameters' must be a JSON Schema object");
      if (const json* d = field(*f, "description"); d != nullptr && !d->is_string())
        return fail(err, p + ".function.description", "invalid_tools", "'" + p + ".function.description' must be a string");
      out->tool_names.push_back(n);
    }
  }
  if (!out->tool_names.empty()) out->tool_choice = ToolChoice::kAuto;
  if (const json* tc = field(j, "tool_choice")) {
    if (tc->is_string()) {
      const std::string v = tc->get<std::string>();
      if (v == "none") out->tool_choice = ToolChoice::kNone;
      else if (v == "auto") out->tool_choice = out->tool_names.empty() ? ToolChoice::kNone : ToolChoice::kAuto;
      else if (v == "required") out->tool_choice = ToolChoice::kRequired;
      else
        return fail(err, "tool_choice", "invalid_tool_choice",
                    "'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}");
    } else if (tc->is_object()) {
      const json* type = field(*tc, "type");
      const json* f = field(*tc, "function");
      const json* name = f != nullptr && f->is_object() ? field(*f, "name") : nullptr;
      if (type == nullptr || *type != "function" || name == nullptr || !name->is_string())
        return fail(err, "tool_choice", "invalid_tool_choice",
                    "a named 'tool_choice' must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
      out->tool_choice = ToolChoice::kFunction;
      out->tool_choice_function = name->get<std::string>();
    } else {
      return fail(err, "tool_choice", "invalid_tool_choice",
                  "'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}");
    }
    if (out->tool_names.empty() && (out->tool_choice == ToolChoice::kRequired || out->tool_choice == ToolChoice::kFunction))
      return fail(err, "tool_choice", "invalid_tool_choice", "'tool_choice' \"required\" or a named function needs 'tools'");
    if (out->tool_choice == ToolChoice::kFunction) {
      bool known = false;
      for (const std::string& n : out->tool_names) known |= n == out->tool_choice_function;
      if (!known)
        return fail(err, "tool_choice", "tool_not_found",
                    "'tool_choice' names the function '" + out->tool_choice_function + "', which is not in 'tools'");
    }
  }
  if (const json* ptc = field(j, "parallel_tool_calls")) {
    if (!ptc->is_boolean()) return fail(err, "parallel_tool_calls", "", "'parallel_tool_calls' must be a boolean");
    out->parallel_tool_calls = ptc->get<bool>();
  }
  if ((out->tool_choice == ToolChoice::kRequired || out->tool_choice == ToolChoice::kFunction) && out->constraint)
    return fail(err, out->constraint->param, "conflicting_output_constraints",
                "'" + out->constraint->param + "' cannot be combined with 'tool_choice' \"required\" or a named function "
                "(the call's arguments are constrained by the function's parameters)");
  return true;
}

}  // namespace

bool parse_structured_fields(const json& j, bool chat, OpenAIRequest* out, ApiError* err) {
  if (!parse_constraint(j, out, err)) return false;
  if (!chat) {
    for (const char* key : {"tools", "tool_choice"})
      if (field(j, key) != nullptr)
        return fail(err, key, "invalid_tools", std::string("'") + key + "' is only supported on /v1/chat/completions");
    return true;
  }
  if (!parse_tools(j, out, err)) return false;
  if (const json* kw = field(j, "chat_template_kwargs")) {
    if (!kw->is_object()) return fail(err, "chat_template_kwargs", "", "'chat_template_kwargs' must be an object");
    out->chat_template_kwargs_json = kw->dump();
  }
  return true;
}

}  // namespace kr
