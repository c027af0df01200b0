// One event's data of an OpenAI-style stream, classified: the "[DONE]" marker, an
// error (an "error" object, or data that is not a JSON object), or a chunk. Shared by
// kr-bench's stream clients (chat_client, token_client, completion_stream).
// Threading: any (pure).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "bench/kr_bench/http_client.h"

namespace kr::bench {

struct StreamEvent {
  enum class Kind { kDone, kError, kChunk };
  Kind kind = Kind::kChunk;
  nlohmann::json chunk;  // kChunk: the parsed object
  std::string error;     // kError: the error object's JSON, or what could not be parsed
};

StreamEvent classify_stream_event(std::string_view data);

// What failed in a finished stream request, "" when nothing did: the transport error,
// a status other than 200 (with the start of its body, kept in plain_body), or the
// stream's own error event (error_event, "" when there was none).
std::string stream_request_error(const StatusOr<HttpResponseHead>& head, const std::string& plain_body,
                                 const std::string& error_event);

}  // namespace kr::bench
