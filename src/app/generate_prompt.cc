#include "app/generate_prompt.h"

#ifdef KR_HAVE_TOKENIZER

#include <fstream>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace kr {
namespace {

using json = nlohmann::json;

// The tokenizer returns plain values or StatusOr; accept both.
template <typename T>
struct IsStatusOr : std::false_type {};
template <typename T>
struct IsStatusOr<StatusOr<T>> : std::true_type {};

template <typename R>
Status append_ids(R&& r, std::vector<int32_t>* out) {
  if constexpr (IsStatusOr<std::decay_t<R>>::value) {
    if (!r.ok()) return r.status();
    for (auto id : r.value()) out->push_back(static_cast<int32_t>(id));
  } else {
    for (auto id : r) out->push_back(static_cast<int32_t>(id));
  }
  return Status::Ok();
}

template <typename R>
StatusOr<std::string> to_text(R&& r) {
  if constexpr (IsStatusOr<std::decay_t<R>>::value) {
    if (!r.ok()) return r.status();
    return std::string(r.value());
  } else {
    return std::string(r);
  }
}

// "<|begin_of_text|>" or {"content": "<|begin_of_text|>", ...}.
std::string token_text(const json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  return "";
}

class TokenizerCodec final : public PromptCodec {
 public:
  StatusOr<std::vector<int32_t>> encode_plain(const std::string& text, std::optional<int32_t> bos) override {
    std::vector<int32_t> ids;
    KR_RETURN_IF_ERROR(append_ids(tok_->encode(text, /*parse_special=*/true), &ids));
    if (bos && (ids.empty() || ids[0] != *bos)) ids.insert(ids.begin(), *bos);
    return ids;
  }

  StatusOr<std::vector<int32_t>> encode_chat_user(const std::string& content) override {
    if (!tmpl_) return FailedPrecondition(config_path_ + ": no chat_template");
    static const std::string kSentinel = "kr0sentinel0user0content0";
    KR_ASSIGN_OR_RETURN(std::string full, render(content));
    KR_ASSIGN_OR_RETURN(std::string marked, render(kSentinel));
    const size_t at = marked.find(kSentinel);
    if (at == std::string::npos || marked.find(kSentinel, at + 1) != std::string::npos)
      return Unimplemented("chat template does not place the user content exactly once");
    const std::string prefix = marked.substr(0, at);
    const std::string suffix = marked.substr(at + kSentinel.size());
    if (full.size() < prefix.size() + suffix.size() || full.compare(0, prefix.size(), prefix) != 0 ||
        full.compare(full.size() - suffix.size(), suffix.size(), suffix) != 0)
      return Unimplemented("chat template output cannot be split around the user content");
    const std::string middle = full.substr(prefix.size(), full.size() - prefix.size() - suffix.size());
    std::vector<int32_t> ids;
    KR_RETURN_IF_ERROR(append_ids(tok_->encode(prefix, true), &ids));
    KR_RETURN_IF_ERROR(append_ids(tok_->encode(middle, false), &ids));
    KR_RETURN_IF_ERROR(append_ids(tok_->encode(suffix, true), &ids));
    return ids;
  }

  StatusOr<std::string> decode(const std::vector<int32_t>& ids) override {
    return to_text(tok_->decode(ids, /*skip_special_tokens=*/true));
  }

  std::unique_ptr<Tokenizer> tok_;
  std::optional<ChatTemplate> tmpl_;
  std::string bos_text_, eos_text_, config_path_;

 private:
  StatusOr<std::string> render(const std::string& content) {
    json ctx;
    ctx["messages"] = json::array({{{"role", "user"}, {"content", content}}});
    ctx["add_generation_prompt"] = true;
    ctx["bos_token"] = bos_text_;
    ctx["eos_token"] = eos_text_;
    return tmpl_->render(ctx);
  }
};

}  // namespace

StatusOr<std::unique_ptr<PromptCodec>> PromptCodec::load(const std::string& model_dir) {
  auto codec = std::make_unique<TokenizerCodec>();
  KR_ASSIGN_OR_RETURN(codec->tok_, Tokenizer::load_from_file(model_dir + "/tokenizer.json"));
  codec->config_path_ = model_dir + "/tokenizer_config.json";
  std::ifstream in(codec->config_path_);
  if (in) {
    json cfg = json::parse(in, nullptr, false);
    if (cfg.is_discarded() || !cfg.is_object()) return InvalidArgument(codec->config_path_ + ": malformed JSON");
    codec->bos_text_ = token_text(cfg, "bos_token");
    codec->eos_text_ = token_text(cfg, "eos_token");
    std::string source;
    auto ct = cfg.find("chat_template");
    if (ct != cfg.end() && ct->is_string()) source = ct->get<std::string>();
    if (ct != cfg.end() && ct->is_array()) {  // [{"name": "default", "template": "..."}, ...]
      for (const auto& e : *ct)
        if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
          source = e["template"].get<std::string>();
    }
    if (!source.empty()) {
      KR_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::parse(source));
      codec->tmpl_.emplace(std::move(t));
    }
  }
  return std::unique_ptr<PromptCodec>(std::move(codec));
}

}  // namespace kr

#else  // !KR_HAVE_TOKENIZER

namespace kr {

StatusOr<std::unique_ptr<PromptCodec>> PromptCodec::load(const std::string& model_dir) {
  return Unimplemented("kr-serve was built without the tokenizer module; cannot read " + model_dir +
                       "/tokenizer.json (use --ids)");
}

}  // namespace kr

#endif
