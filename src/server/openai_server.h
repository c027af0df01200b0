// OpenAIServer: the routes of the HTTP API. handle() is the HttpServer's
// handler: it authenticates, routes, parses and validates on a worker thread
// and either answers at once or hands the request to a Generation.
//
// Listener tags: kMainListener serves everything; kMetricsListener (the
// optional KR_METRICS_PORT) serves only /metrics, /health, /ready and /stats.
//
// Threading: handle() from any number of worker threads at once.
#pragma once

#include <memory>

#include "server/http_server.h"
#include "server/server_context.h"

namespace kr {

constexpr int kMainListener = 0;
constexpr int kMetricsListener = 1;

class OpenAIServer {
 public:
  explicit OpenAIServer(ServerContext* ctx) : ctx_(ctx) {}
  void handle(int listener, HttpRequest&& req, std::shared_ptr<ResponseWriter> w);

 private:
  HttpResponse route_simple(int listener, const HttpRequest& req, bool* handled);
  void generate(bool chat, const HttpRequest& req, std::shared_ptr<ResponseWriter> w);
  HttpResponse tokenize(const HttpRequest& req);
  HttpResponse detokenize(const HttpRequest& req);
  HttpResponse stats();
  bool authorized(const HttpRequest& req) const;

  ServerContext* ctx_;
};

// Formats protocol errors of the HTTP layer (400/408/413/431) the OpenAI way.
HttpResponse http_error_response(int status, const std::string& message);

}  // namespace kr
