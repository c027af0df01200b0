#include "engine/request.h"

#include <string>

namespace kr {

Status check_context_length(int64_t prompt_tokens, int64_t max_tokens, int64_t max_model_len) {
  if (prompt_tokens + max_tokens <= max_model_len) return Status::Ok();
  return OutOfRange("This model's maximum context length is " + std::to_string(max_model_len) +
                    " tokens. However, you requested " + std::to_string(prompt_tokens + max_tokens) + " tokens (" +
                    std::to_string(prompt_tokens) + " in the prompt, " + std::to_string(max_tokens) +
                    " for the completion).");
}

}  // namespace kr
