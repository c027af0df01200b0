// LogprobsWriter: one choice's logprobs in the OpenAI shape of its endpoint.
//   chat:        {"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}]}
//   completions: {"tokens": [...], "token_logprobs": [...], "top_logprobs": [{token: logprob}], "text_offset": [...]}
// Tokens are added as they are emitted; take() gives what was added since the
// last take(): a stream's delta per chunk, or the whole choice at the end. A
// logprob that underflowed (-inf) is written as -9999, as OpenAI does (JSON
// has no -inf).
//
// Threading: one per choice, used by one thread at a time.
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

#include "sampling/sampled_token.h"

namespace kr {

class Tokenizer;

class LogprobsWriter {
 public:
  // tokens_as_ids: "token_id:N" instead of the token's text (return_tokens_as_token_ids).
  LogprobsWriter(bool chat, const Tokenizer* tok, bool tokens_as_ids);

  // One emitted token; text_offset = bytes of the choice's text before it (completions).
  void add(const SampledToken& t, size_t text_offset);
  bool empty() const { return count_ == 0; }
  // The logprobs object of the tokens added since the last take().
  nlohmann::json take();

 private:
  std::string token_string(int32_t id) const;
  nlohmann::json empty_object() const;

  bool chat_;
  const Tokenizer* tok_;
  bool tokens_as_ids_;
  nlohmann::json pending_;
  size_t count_ = 0;
};

}  // namespace kr
