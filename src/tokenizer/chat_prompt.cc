#include "tokenizer/chat_prompt.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace kr {
namespace {

using ojson = nlohmann::ordered_json;

std::string sentinel(size_t i) { return "KRSENTINEL" + std::to_string(i) + "X9Q"; }

std::string trim_ws(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

}  // namespace

ChatPromptBuilder::ChatPromptBuilder(const Tokenizer* tok, ChatTemplate tmpl, std::string bos_token,
                                     std::string eos_token)
    : tok_(tok), tmpl_(std::move(tmpl)), bos_token_(std::move(bos_token)), eos_token_(std::move(eos_token)) {}

StatusOr<std::string> ChatPromptBuilder::render(const std::vector<ChatMessage>& messages,
                                                const std::vector<std::string>* replace,
                                                const std::string& tools_json, bool add_generation_prompt) const {
  try {
    ojson ctx;
    ojson msgs = ojson::array();
    for (size_t i = 0; i < messages.size(); ++i) {
      const ChatMessage& m = messages[i];
      ojson jm;
      jm["role"] = m.role;
      if (m.content) jm["content"] = replace ? (*replace)[i] : *m.content;
      else jm["content"] = nullptr;
      if (!m.extra_json.empty()) {
        const ojson extra = ojson::parse(m.extra_json);
        for (auto it = extra.begin(); it != extra.end(); ++it) jm[it.key()] = it.value();
      }
      msgs.push_back(std::move(jm));
    }
    ctx["messages"] = std::move(msgs);
    ctx["add_generation_prompt"] = add_generation_prompt;
    ctx["bos_token"] = bos_token_;
    ctx["eos_token"] = eos_token_;
    if (!tools_json.empty()) ctx["tools"] = ojson::parse(tools_json);
    return tmpl_.render(ctx);
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("chat template context: ") + e.what());
  }
}

StatusOr<ChatPrompt> ChatPromptBuilder::build(const std::vector<ChatMessage>& messages,
                                              const std::string& tools_json, bool add_generation_prompt) const {
  KR_ASSIGN_OR_RETURN(std::string real, render(messages, nullptr, tools_json, add_generation_prompt));
  std::vector<std::string> sentinels(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) sentinels[i] = sentinel(i);
  KR_ASSIGN_OR_RETURN(std::string skeleton, render(messages, &sentinels, tools_json, add_generation_prompt));

  // Cut the skeleton into template pieces and the message index between them.
  struct Cut {
    size_t at;
    size_t msg;
  };
  std::vector<Cut> cuts;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!messages[i].content) continue;
    for (size_t at = skeleton.find(sentinels[i]); at != std::string::npos;
         at = skeleton.find(sentinels[i], at + 1))
      cuts.push_back({at, i});
  }
  std::sort(cuts.begin(), cuts.end(), [](const Cut& a, const Cut& b) { return a.at < b.at; });

  ChatPrompt out;
  out.text = real;
  auto encode_template = [&](std::string_view t) {
    const auto ids = tok_->encode(t, /*parse_special=*/true);
    out.ids.insert(out.ids.end(), ids.begin(), ids.end());
  };
  auto encode_content = [&](std::string_view t) {
    const auto ids = tok_->encode(t, /*parse_special=*/false);
    out.ids.insert(out.ids.end(), ids.begin(), ids.end());
  };

  size_t sk = 0;  // position in the skeleton
  size_t rp = 0;  // position in the real rendering
  for (size_t c = 0; c < cuts.size(); ++c) {
    const std::string piece = skeleton.substr(sk, cuts[c].at - sk);
    if (real.compare(rp, piece.size(), piece) != 0)
      return Internal("chat template renders contents in a way the prompt builder cannot split");
    encode_template(piece);
    rp += piece.size();
    sk = cuts[c].at + sentinels[cuts[c].msg].size();
    const size_t next_at = c + 1 < cuts.size() ? cuts[c + 1].at : skeleton.size();
    const std::string next_piece = skeleton.substr(sk, next_at - sk);
    // The content as printed: as given, or trimmed; else the text up to the next piece.
    const std::string& content = *messages[cuts[c].msg].content;
    std::string printed;
    bool found = false;
    for (const std::string& cand : {content, trim_ws(content)}) {
      if (real.compare(rp, cand.size(), cand) == 0 && real.compare(rp + cand.size(), next_piece.size(), next_piece) == 0) {
        printed = cand;
        found = true;
        break;
      }
    }
    if (!found) {
      const size_t end = c + 1 < cuts.size() || !next_piece.empty() ? real.find(next_piece, rp) : real.size();
      if (end == std::string::npos)
        return Internal("chat template renders contents in a way the prompt builder cannot split");
      printed = real.substr(rp, end - rp);
    }
    encode_content(printed);
    rp += printed.size();
  }
  const std::string tail = skeleton.substr(sk);
  if (real.compare(rp, std::string::npos, tail) != 0)
    return Internal("chat template renders contents in a way the prompt builder cannot split");
  encode_template(tail);
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
