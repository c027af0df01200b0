// Parsing and validation of /v1/chat/completions and /v1/completions bodies
// into typed structs. JSON stays in the .cc; unknown fields are ignored,
// known fields with a wrong type or range are a 400 that names the field.
//
// Threading: pure functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sampling/sampling_params.h"
#include "server/api_error.h"
#include "tokenizer/chat_message.h"

namespace kr {

struct OpenAIRequest {
  bool chat = false;
  std::string model;
  // Chat:
  std::vector<ChatMessage> messages;
  std::string tools_json;              // "tools" as given (JSON array text), "" when absent
  bool add_generation_prompt = true;
  // Completions: exactly one of these.
  std::optional<std::string> prompt_text;
  std::optional<std::vector<int32_t>> prompt_ids;
  bool echo = false;

  std::optional<int32_t> max_tokens;   // max_completion_tokens wins over max_tokens
  SamplingParams sampling;             // sampling.logprobs: -1 none, else top-k count
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  int32_t n = 1;
  bool stream = false;
  bool include_usage = false;          // stream_options.include_usage
  bool ignore_eos = false;
  int32_t min_tokens = 0;
  int32_t priority = 0;                // lower first
  std::string user;
  bool return_tokens_as_token_ids = false;
  bool skip_special_tokens = true;
};

struct RequestLimits {
  int32_t vocab_size = 1 << 30;  // token ids must be below this
  int32_t max_n = 16;
  int32_t max_top_logprobs = 20;
  int32_t max_stop_strings = 16;
  size_t max_stop_bytes = 1024;
  int32_t max_json_depth = 32;
};

// On failure returns false and fills *err (400, param named).
bool parse_openai_request(std::string_view body, bool chat, const RequestLimits& limits,
                          OpenAIRequest* out, ApiError* err);

// Nesting depth of a JSON text ({ and [ outside strings); parsing deeper input
// is refused before nlohmann sees it.
int json_nesting_depth(std::string_view text);

// "urgent" / "default" / "background" or an integer.
bool parse_priority_name(std::string_view s, int32_t* out);

}  // namespace kr
