// ApiError: an OpenAI-shaped error, {"error": {"message", "type", "param", "code"}},
// with its HTTP status. Every failure the server reports to a client is one.
//
// Threading: plain values; any thread.
#pragma once

#include <string>

#include "base/status.h"
#include "server/http_server.h"

namespace kr {

struct ApiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // "" -> null
  std::string code;   // "" -> null
};

ApiError bad_param(const std::string& param, const std::string& message);
// Maps a Status from a lower layer (engine submit, tokenizer, template) to an
// error: kInvalidArgument/kOutOfRange -> 400, kNotFound -> 404,
// kResourceExhausted -> 503, kUnauthenticated -> 401, anything else -> 500.
ApiError error_from_status(const Status& status);

std::string error_json(const ApiError& e);  // the body
HttpResponse error_response(const ApiError& e);  // body + status (+ Retry-After for 503)

}  // namespace kr
