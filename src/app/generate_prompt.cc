#include "app/generate_prompt.h"

#include "tokenizer/tokenizer_config.h"

namespace kr {

StatusOr<std::unique_ptr<PromptCodec>> PromptCodec::load(const std::string& model_dir) {
  std::unique_ptr<PromptCodec> codec(new PromptCodec());
  KR_ASSIGN_OR_RETURN(codec->tok_, Tokenizer::load_from_file(model_dir + "/tokenizer.json"));
  codec->config_path_ = model_dir + "/tokenizer_config.json";
  // No tokenizer_config.json is fine (plain prompts need none); a broken one is an error.
  StatusOr<TokenizerConfig> cfg = read_tokenizer_config(codec->config_path_);
  if (!cfg.ok() && cfg.status().code() != StatusCode::kNotFound) return cfg.status();
  if (cfg.ok()) {
    KR_ASSIGN_OR_RETURN(codec->chat_, make_chat_prompt_builder(codec->tok_.get(), *cfg));
  }
  return codec;
}

std::vector<int32_t> PromptCodec::encode_plain(const std::string& text, std::optional<int32_t> bos) const {
  std::vector<int32_t> ids = tok_->encode(text, /*parse_special=*/true);
  if (bos && (ids.empty() || ids[0] != *bos)) ids.insert(ids.begin(), *bos);
  return ids;
}

StatusOr<std::vector<int32_t>> PromptCodec::encode_chat_user(const std::string& content) const {
  if (!chat_) return FailedPrecondition(config_path_ + ": no chat_template");
  ChatMessage user;
  user.role = "user";
  user.content = content;
  KR_ASSIGN_OR_RETURN(ChatPrompt prompt, chat_->build({user}, /*tools_json=*/"", /*add_generation_prompt=*/true));
  return std::move(prompt.ids);
}

std::string PromptCodec::decode(const std::vector<int32_t>& ids) const {
  return tok_->decode(ids, /*skip_special_tokens=*/true);
}

}  // namespace kr
