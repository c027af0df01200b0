// ServerContext: what the HTTP handlers share: the engine, the tokenizer, the
// chat prompt builder, metrics and the server's settings. Built by serve_cmd;
// the model parts are published once loading finishes (`ready` flips to true
// with release order, readers check it with acquire before touching them).
//
// Threading: fields are written before `ready` is set and only read after;
// the engine, tokenizer and metrics are themselves thread-safe as documented.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/openai_request.h"
#include "server/task_pool.h"

namespace kr {

class Engine;
class Metrics;
class Tokenizer;
class ChatPromptBuilder;

struct ServerContext {
  // Settings (fixed before the HTTP server starts).
  std::string served_model_name = "tiny-llama3";
  std::string api_key;       // empty: no authentication
  std::string cors_origin;   // empty: no CORS headers
  bool webui = true;         // GET / serves the chat page (server/webui.h)
  int64_t created_unix_s = 0;
  RequestLimits limits;

  // Set once the model is loaded.
  Engine* engine = nullptr;
  Metrics* metrics = nullptr;  // may be set before the model (for /metrics while loading)
  const Tokenizer* tokenizer = nullptr;
  const ChatPromptBuilder* chat = nullptr;  // null when the model has no chat template
  int32_t max_model_len = 0;
  std::vector<int32_t> eos_ids;
  std::optional<int32_t> bos_id;
  std::atomic<bool> ready{false};
  std::atomic<bool> draining{false};

  TaskPool* event_pool = nullptr;  // turns engine events into response bytes
  std::atomic<int64_t> next_request_id{1};
};

}  // namespace kr
