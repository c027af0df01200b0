// OpenAIServer: the routes of the HTTP API. handle() is the HttpServer's
// handler: it finds the request's route in a table of named handlers, applies
// the route's rules in one order (listener, API key, method, models of the
// start loaded) and calls the handler, which answers at once or, for the routes
// of a model, routes the request by its "model" through the ModelRegistry and
// hands it to a Generation (after the model's load when it was not loaded).
//
// Listener tags: kMainListener serves everything; kMetricsListener (the
// optional KR_METRICS_PORT) serves only /metrics, /health, /ready and /stats.
//
// Threading: handle() from any number of worker threads at once.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>

#include "server/http_server.h"
#include "server/model_registry.h"
#include "server/openai_request.h"
#include "server/server_context.h"

namespace kr {

constexpr int kMainListener = 0;
constexpr int kMetricsListener = 1;

class OpenAIServer {
 public:
  explicit OpenAIServer(ServerContext* ctx) : ctx_(ctx) {}
  void handle(int listener, HttpRequest&& req, std::shared_ptr<ResponseWriter> w);

  // A handler answers through the writer, at once or later.
  using Handler = void (OpenAIServer::*)(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w);
  struct Route {
    const char* path;
    bool prefix;      // matches path + anything ("/v1/models/" + a model id)
    bool post;        // POST; else GET or HEAD
    bool api;         // main listener only, behind the API key
    bool needs_model; // 503 until the models of the start are loaded
    Handler handler;
  };
  static std::span<const Route> routes();

 private:
  void health(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w);  // liveness
  void ready(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w);   // readiness
  void metrics(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w);
  void stats(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w);
  void list_models(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w);
  void get_model(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w);
  void tokenize(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w);
  void detokenize(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w);
  void chat_completions(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w);
  void completions(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w);
  void generate(bool chat, const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w);
  void start_generation(bool chat, OpenAIRequest req, std::shared_ptr<ModelLease> model,
                        const std::shared_ptr<ResponseWriter>& w);
  void with_model(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w,
                  std::function<void(const ModelLease&)> fn);
  void tokenize_with(const std::string& body, const ModelLease& model, const std::shared_ptr<ResponseWriter>& w);
  void detokenize_with(const std::string& body, const ModelLease& model, const std::shared_ptr<ResponseWriter>& w);
  bool authorized(const HttpRequest& req) const;

  ServerContext* ctx_;
};

// Formats protocol errors of the HTTP layer (400/408/413/431) the OpenAI way.
HttpResponse http_error_response(int status, const std::string& message);

}  // namespace kr
