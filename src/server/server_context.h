// ServerContext: what the HTTP handlers share: the engine, the prompt context
// (tokenizer, chat template, BOS, context limit), metrics and the server's
// settings. Built by serve_main; the model parts are published once loading
// finishes (`ready` flips to true with release order, readers check it with
// acquire before touching them).
//
// Threading: fields are written before `ready` is set and only read after;
// the engine, tokenizer and metrics are themselves thread-safe as documented.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "server/openai_request.h"
#include "server/prompt.h"
#include "server/structured_output.h"
#include "server/task_pool.h"

namespace kr {

class Engine;
class Metrics;

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
  PromptContext prompt;        // prompt.max_model_len is the engine's
  StructuredOutputConfig structured;  // grammar compiler, tool-call format, reasoning parser
  std::atomic<bool> ready{false};
  std::atomic<bool> draining{false};

  TaskPool* event_pool = nullptr;  // turns engine events into response bytes
  std::atomic<int64_t> next_request_id{1};
};

}  // namespace kr
