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

PromptContext PromptCodec::context(std::optional<int32_t> bos_id, int32_t vocab_size, int32_t max_model_len) const {
  PromptContext c;
  c.tokenizer = tok_.get();
  c.chat = chat_.get();
  c.bos_id = bos_id;
  c.vocab_size = vocab_size;
  c.max_model_len = max_model_len;
  return c;
}

std::string PromptCodec::decode(const std::vector<int32_t>& ids) const {
  return tok_->decode(ids, /*skip_special_tokens=*/true);
}

}  // namespace kr
