#include "server/webui.h"

#include "base/embedded_file.h"

namespace kr {

extern const EmbeddedFile kWebuiFiles[];  // generated: webui_assets.cc

namespace {

std::string_view content_type_of(std::string_view name) {
  auto ends = [&](std::string_view ext) {
    return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".json")) return "application/json";
  return "application/octet-stream";
}

// The page runs only its own scripts and styles and talks only to this origin:
// model output that slipped through the Markdown renderer could not load or run anything.
constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

}  // namespace

bool webui_asset(std::string_view path, HttpResponse* out) {
  std::string_view name;
  if (path == "/" || path == "/index.html") {
    name = "index.html";
  } else if (path.substr(0, 7) == "/webui/" && path.size() > 7) {
    name = path.substr(7);
    if (name == "index.html") return false;  // one address for the page
  } else {
    return false;
  }
  const EmbeddedFile* f = find_embedded_file(kWebuiFiles, name);
  if (f == nullptr) return false;
  out->status = 200;
  out->content_type = std::string(content_type_of(name));
  out->body.assign(embedded_text(*f));
  out->headers = {{"Cache-Control", "no-cache"},
                  {"X-Content-Type-Options", "nosniff"},
                  {"Referrer-Policy", "no-referrer"},
                  {"Content-Security-Policy", kContentSecurityPolicy}};
  return true;
}

}  // namespace kr
