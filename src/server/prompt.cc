#include "server/prompt.h"

#include "base/check.h"
#include "engine/request.h"
#include "tokenizer/chat_prompt.h"
#include "tokenizer/tokenizer.h"

namespace kr {

StatusOr<AdmittedPrompt> admit_prompt(const PromptInput& in, const PromptContext& ctx) {
  KR_CHECK_MSG((in.messages != nullptr) + (in.text != nullptr) + (in.ids != nullptr) == 1,
               "admit_prompt: exactly one prompt source");
  AdmittedPrompt out;
  if (in.messages != nullptr) {
    if (ctx.chat == nullptr) return FailedPrecondition("this model has no chat template");
    KR_ASSIGN_OR_RETURN(ChatPrompt p, ctx.chat->build(*in.messages, in.tools_json, in.add_generation_prompt));
    out.ids = std::move(p.ids);
  } else if (in.text != nullptr) {
    out.ids = ctx.tokenizer->encode(*in.text, /*parse_special=*/true);
    if (in.add_special_tokens && ctx.bos_id && (out.ids.empty() || out.ids[0] != *ctx.bos_id))
      out.ids.insert(out.ids.begin(), *ctx.bos_id);
  } else {
    for (int32_t id : *in.ids) {
      if (id < 0 || id >= ctx.vocab_size)
        return InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                               std::to_string(ctx.vocab_size) + ")");
    }
    out.ids = *in.ids;
  }
  if (!in.generation) return out;
  if (out.ids.empty()) return InvalidArgument("the prompt has no tokens");
  const int64_t prompt_len = static_cast<int64_t>(out.ids.size());
  // With no max_tokens the request wants at least one token.
  KR_RETURN_IF_ERROR(check_context_length(prompt_len, in.max_tokens.value_or(1), ctx.max_model_len));
  out.max_tokens = in.max_tokens ? *in.max_tokens : static_cast<int32_t>(ctx.max_model_len - prompt_len);
  return out;
}

}  // namespace kr
