// ServerContext: what the HTTP handlers share: the served models (their
// registry: engines, tokenizers, metrics), the server's settings and the event
// pool. Built by serve_main before the HTTP server starts; `ready` turns true
// (release order) once the models loaded at start are loaded.
//
// Threading: fields are written before the HTTP server starts and only read
// after; ready and draining are atomics; the registry is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "server/openai_request.h"
#include "server/task_pool.h"

namespace kr {

class ModelRegistry;

struct ServerContext {
  // Settings (fixed before the HTTP server starts).
  std::string api_key;       // empty: no authentication
  std::string cors_origin;   // empty: no CORS headers
  bool webui = true;         // GET / serves the chat page (server/webui.h)
  int64_t created_unix_s = 0;
  RequestLimits limits;      // vocab_size is checked per model after routing

  ModelRegistry* models = nullptr;  // every served model; requests are routed by name
  std::atomic<bool> ready{false};     // the models loaded at start are loaded
  std::atomic<bool> draining{false};  // SIGTERM: finishing what runs, taking nothing new

  TaskPool* event_pool = nullptr;  // turns engine events into response bytes
  std::atomic<int64_t> next_request_id{1};
};

}  // namespace kr
