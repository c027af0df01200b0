#include "tokenizer/chat_prompt.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace kr {
namespace {

using ojson = nlohmann::ordered_json;

// Markers for special-token text in client strings: U+F0000, the index of
// the original text, U+F0001.
constexpr std::string_view kMarkBegin = "\xF3\xB0\x80\x80";
constexpr std::string_view kMarkEnd = "\xF3\xB0\x80\x81";

// Replaces the special-token occurrences of every string inside `j` (not
// object keys) by markers, appending the originals.
void protect_strings(const Tokenizer& tok, ojson* j, std::vector<std::string>* originals) {
  if (j->is_string()) {
    const std::string& s = j->get_ref<const std::string&>();
    std::optional<TextSpan> m = tok.find_special_text(s, 0);
    if (!m) return;
    std::string out;
    size_t pos = 0;
    for (; m; m = tok.find_special_text(s, pos)) {
      out.append(s, pos, m->begin - pos);
      out.append(kMarkBegin).append(std::to_string(originals->size())).append(kMarkEnd);
      originals->push_back(s.substr(m->begin, m->end - m->begin));
      pos = m->end;
    }
    out.append(s, pos, std::string::npos);
    *j = std::move(out);
  } else if (j->is_array() || j->is_object()) {
    for (auto& v : *j) protect_strings(tok, &v, originals);
  }
}

// Puts the originals back in place of the markers of `text`, recording where
// they are.
std::string restore_markers(std::string_view text, const std::vector<std::string>& originals,
                            std::vector<TextSpan>* spans) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (size_t at = text.find(kMarkBegin); at != std::string_view::npos; at = text.find(kMarkBegin, pos)) {
    size_t k = at + kMarkBegin.size(), index = 0;
    bool digits = false;
    while (k < text.size() && text[k] >= '0' && text[k] <= '9' && index < originals.size()) {
      index = index * 10 + static_cast<size_t>(text[k++] - '0');
      digits = true;
    }
    if (!digits || index >= originals.size() || text.substr(k, kMarkEnd.size()) != kMarkEnd) {
      // Not one of ours (or cut by the template): leave it.
      out.append(text.substr(pos, k - pos));
      pos = k;
      continue;
    }
    out.append(text.substr(pos, at - pos));
    spans->push_back(TextSpan{out.size(), out.size() + originals[index].size()});
    out.append(originals[index]);
    pos = k + kMarkEnd.size();
  }
  out.append(text.substr(pos));
  return out;
}

// vLLM hands tool-call arguments to the template parsed: a JSON text becomes
// its value, an empty or missing one {}.
Status parse_tool_call_arguments(ojson* message, size_t index) {
  auto calls = message->find("tool_calls");
  if (calls == message->end() || !calls->is_array()) return Status::Ok();
  for (size_t k = 0; k < calls->size(); ++k) {
    ojson& call = (*calls)[k];
    if (!call.is_object()) continue;
    auto fn = call.find("function");
    if (fn == call.end() || !fn->is_object()) continue;
    auto args = fn->find("arguments");
    if (args == fn->end() || args->is_null() || (args->is_string() && args->get<std::string>().empty())) {
      (*fn)["arguments"] = ojson::object();
      continue;
    }
    if (!args->is_string()) continue;  // already a value
    ojson parsed = ojson::parse(args->get<std::string>(), nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      return InvalidArgument("messages[" + std::to_string(index) + "].tool_calls[" + std::to_string(k) +
                             "].function.arguments is not valid JSON");
    }
    *args = std::move(parsed);
  }
  return Status::Ok();
}

StatusOr<ojson> message_dict(const ChatMessage& m, size_t index, const std::string* content) {
  ojson jm;
  jm["role"] = m.role;
  if (content) jm["content"] = *content;
  else jm["content"] = nullptr;
  if (m.reasoning_content) jm["reasoning_content"] = *m.reasoning_content;
  if (!m.name.empty()) jm["name"] = m.name;
  if (!m.tool_calls.empty()) {
    ojson calls = ojson::array();
    for (const ChatToolCall& c : m.tool_calls) {
      ojson call;
      if (!c.id.empty()) call["id"] = c.id;
      call["type"] = c.type;
      call["function"] = ojson{{"name", c.name}, {"arguments", c.arguments_json}};
      calls.push_back(std::move(call));
    }
    jm["tool_calls"] = std::move(calls);
  }
  if (!m.tool_call_id.empty()) jm["tool_call_id"] = m.tool_call_id;
  if (!m.extra_json.empty()) {
    const ojson extra = ojson::parse(m.extra_json, nullptr, /*allow_exceptions=*/false);
    if (extra.is_discarded() || !extra.is_object()) {
      return InvalidArgument("messages[" + std::to_string(index) + "]: extra fields are not a JSON object");
    }
    for (auto it = extra.begin(); it != extra.end(); ++it) jm[it.key()] = it.value();
  }
  KR_RETURN_IF_ERROR(parse_tool_call_arguments(&jm, index));
  return jm;
}

}  // namespace

ChatPromptBuilder::ChatPromptBuilder(const Tokenizer* tok, ChatTemplate tmpl, std::string bos_token,
                                     std::string eos_token)
    : tok_(tok), tmpl_(std::move(tmpl)), bos_token_(std::move(bos_token)), eos_token_(std::move(eos_token)) {}

StatusOr<std::string> ChatPromptBuilder::render_with(const std::vector<ChatMessage>& messages,
                                                     const ChatPromptOptions& options,
                                                     std::vector<std::string>* originals) const {
  try {
    ojson ctx;
    ojson msgs = ojson::array();
    for (size_t i = 0; i < messages.size(); ++i) {
      const ChatMessage& m = messages[i];
      KR_ASSIGN_OR_RETURN(ojson jm, message_dict(m, i, m.content ? &*m.content : nullptr));
      msgs.push_back(std::move(jm));
    }
    ojson kw = ojson::object();
    if (!options.template_kwargs_json.empty()) {
      kw = ojson::parse(options.template_kwargs_json, nullptr, /*allow_exceptions=*/false);
      if (kw.is_discarded() || !kw.is_object()) return InvalidArgument("chat_template_kwargs must be a JSON object");
      for (const char* reserved : {"messages", "tools", "add_generation_prompt"}) {
        if (kw.contains(reserved)) {
          return InvalidArgument(std::string("chat_template_kwargs may not set '") + reserved +
                                 "' (it has its own request field)");
        }
      }
    }
    ojson tools;
    if (!options.tools_json.empty()) {
      tools = ojson::parse(options.tools_json, nullptr, /*allow_exceptions=*/false);
      if (tools.is_discarded() || !tools.is_array()) return InvalidArgument("tools must be a JSON array");
    }
    if (originals != nullptr) {
      protect_strings(*tok_, &msgs, originals);
      protect_strings(*tok_, &tools, originals);
      protect_strings(*tok_, &kw, originals);
    }
    // As transformers: the special tokens first, then the caller's kwargs
    // (which may replace them), then the named arguments.
    ctx["bos_token"] = bos_token_;
    ctx["eos_token"] = eos_token_;
    for (auto it = kw.begin(); it != kw.end(); ++it) ctx[it.key()] = it.value();
    ctx["messages"] = std::move(msgs);
    ctx["add_generation_prompt"] = options.add_generation_prompt;
    if (!tools.is_null()) ctx["tools"] = std::move(tools);
    return tmpl_.render(ctx);
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("chat template context: ") + e.what());
  }
}

StatusOr<std::string> ChatPromptBuilder::render(const std::vector<ChatMessage>& messages,
                                                const ChatPromptOptions& options) const {
  return render_with(messages, options, nullptr);
}

StatusOr<ChatPrompt> ChatPromptBuilder::build(const std::vector<ChatMessage>& messages, const std::string& tools_json,
                                              bool add_generation_prompt) const {
  ChatPromptOptions o;
  o.tools_json = tools_json;
  o.add_generation_prompt = add_generation_prompt;
  return build(messages, o);
}

StatusOr<ChatPrompt> ChatPromptBuilder::build(const std::vector<ChatMessage>& messages,
                                              const ChatPromptOptions& options) const {
  std::vector<std::string> originals;
  KR_ASSIGN_OR_RETURN(std::string rendered, render_with(messages, options, &originals));
  ChatPrompt out;
  if (originals.empty()) {
    out.ids = tok_->encode(rendered, /*parse_special=*/true);
    out.text = std::move(rendered);
    return out;
  }
  std::vector<TextSpan> plain;
  out.text = restore_markers(rendered, originals, &plain);
  out.ids = tok_->encode_with_plain_spans(out.text, plain);
  return out;
}

StatusOr<std::unique_ptr<ChatPromptBuilder>> make_chat_prompt_builder(const Tokenizer* tok,
                                                                      const TokenizerConfig& config) {
  if (config.chat_template.empty()) return std::unique_ptr<ChatPromptBuilder>();
  KR_ASSIGN_OR_RETURN(ChatTemplate tmpl, ChatTemplate::parse(config.chat_template));
  return std::make_unique<ChatPromptBuilder>(tok, std::move(tmpl), config.bos_token.value_or(""),
                                             config.eos_token.value_or(""));
}

}  // namespace kr
