#include "server/structured_output.h"

#include <vector>

#include "grammar/matcher.h"

namespace kr {
namespace {

bool contains(const std::string& s, const char* what) { return s.find(what) != std::string::npos; }

// Compiles `spec` and checks that some token of the vocabulary can start it.
bool compile(const StructuredOutputConfig& config, const grammar::GrammarSpec& spec, const std::string& param,
             std::shared_ptr<const grammar::CompiledGrammar>* out, ApiError* err) {
  if (config.compiler == nullptr) {
    *err = bad_param(param, "structured outputs are not available for this model");
    err->code = "structured_outputs_unavailable";
    return false;
  }
  auto g = config.compiler->compile(spec);
  if (!g.ok()) {
    *err = grammar_error(g.status(), spec.kind, param);
    return false;
  }
  // The first mask also warms the grammar's node masks for the engine.
  grammar::GrammarMatcher m(*g);
  std::vector<uint32_t> words((*g)->vocab().mask_words());
  if (m.fill_mask(words.data()) == 0) {
    const std::string why = m.error();
    *err = bad_param(param, "the " + std::string(grammar::grammar_kind_name(spec.kind)) +
                                " accepts no output this model's vocabulary can write" + (why.empty() ? "" : ": " + why));
    err->code = "grammar_accepts_nothing";
    return false;
  }
  *out = std::move(g).value();
  return true;
}

}  // namespace

ApiError grammar_error(const Status& status, grammar::GrammarKind kind, const std::string& param) {
  const std::string& m = status.message();
  ApiError e = bad_param(param, m);
  using grammar::GrammarKind;
  if (contains(m, "too large") || contains(m, "too deeply") || contains(m, "too long") || contains(m, "too many") ||
      contains(m, "too complex") || contains(m, "limit") || contains(m, " above ")) {
    e.code = "grammar_too_large";
  } else if (contains(m, "accepts no") || contains(m, "satisfies") || contains(m, "can have no value") ||
             contains(m, "is not allowed by the schema") || contains(m, "matches nothing") ||
             contains(m, "accepts nothing") || contains(m, "empty language")) {
    e.code = "grammar_accepts_nothing";
  } else if (kind == GrammarKind::kJsonSchema || kind == GrammarKind::kJsonObject) {
    e.code = contains(m, "not supported") || contains(m, "unsupported") || contains(m, "is supported")
                 ? "unsupported_json_schema_keyword"
                 : "invalid_json_schema";
  } else if (kind == GrammarKind::kRegex) {
    e.code = "invalid_regex";
  } else if (kind == GrammarKind::kChoices) {
    e.code = "invalid_choice";
  } else {
    e.code = "invalid_grammar";
  }
  return e;
}

bool plan_output(const StructuredOutputConfig& config, const OpenAIRequest& req, const std::string& chat_text,
                 OutputPlan* plan, ApiError* err) {
  *plan = OutputPlan{};
  if (req.chat && config.reasoning != ReasoningParserKind::kNone) {
    plan->reasoning = config.reasoning;
    plan->reasoning_start = reasoning_start_from_prompt(chat_text);
  }
  const bool tools = req.chat && !req.tool_names.empty() && req.tool_choice != ToolChoice::kNone;
  if (tools) {
    if (!config.tool_format) {
      *err = bad_param("tools", "this model's chat template teaches no tool-call format kr-serve knows; start "
                                "the server with --tool-call-parser llama3_json|hermes|mistral");
      err->code = "tool_calls_unsupported";
      return false;
    }
    plan->tool_calls = config.tool_format;
    if (req.tool_choice == ToolChoice::kRequired || req.tool_choice == ToolChoice::kFunction) {
      auto spec = build_tool_call_grammar(*config.tool_format, req.tools_json,
                                          req.tool_choice == ToolChoice::kFunction ? req.tool_choice_function : "",
                                          req.parallel_tool_calls, config.mistral_tool_calls_token);
      if (!spec.ok()) {
        *err = bad_param("tools", spec.status().message());
        err->code = "invalid_tools";
        return false;
      }
      if (!compile(config, *spec, "tools", &plan->grammar, err)) {
        // Mostly a parameters schema the compiler refuses (the message names it).
        if (err->code == "invalid_grammar")
          err->code = contains(err->message, "support") ? "unsupported_json_schema_keyword" : "invalid_tools";
        return false;
      }
    }
  }
  if (req.constraint && !compile(config, req.constraint->spec, req.constraint->param, &plan->grammar, err)) return false;
  if (plan->grammar != nullptr && plan->reasoning != ReasoningParserKind::kNone &&
      plan->reasoning_start != ReasoningStart::kInContent)
    plan->grammar_trigger = config.reasoning_end;
  return true;
}

}  // namespace kr
