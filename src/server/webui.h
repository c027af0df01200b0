// The built-in chat page: GET / and its assets under /webui/, compiled into
// the binary from src/server/webui/ (cmake/embed_files.cmake). Nothing is
// fetched at run time; the page talks to /v1/models and /v1/chat/completions.
// Off with `kr-serve serve --no-webui`.
//
// Threading: any thread (reads constant data).
#pragma once

#include <string_view>

#include "server/http_server.h"

namespace kr {

// If `path` (the request path, without the query) names a page asset, fills
// *out (200, content type, caching and security headers, body) and returns
// true; otherwise returns false and leaves *out alone. For GET requests.
bool webui_asset(std::string_view path, HttpResponse* out);

}  // namespace kr
