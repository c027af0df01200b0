#include "server/openai_server.h"

#include <nlohmann/json.hpp>

#include "base/build_info.h"
#include "engine/engine.h"
#include "metrics/metrics.h"
#include "server/generation.h"
#include "server/model_registry.h"
#include "server/prompt.h"
#include "server/webui.h"
#include "tokenizer/tokenizer.h"

namespace kr {
namespace {

using json = nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

HttpResponse json_response(int status, const json& j) {
  HttpResponse r;
  r.status = status;
  r.body = dump(j) + "\n";  // a final newline: line-oriented tools (and pipelined readers) see whole lines
  return r;
}

// Constant-time comparison: the time taken does not depend on where the strings differ.
bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

ApiError not_ready() {
  ApiError e;
  e.http_status = 503;
  e.type = "server_error";
  e.code = "model_loading";
  e.message = "the model is still loading";
  return e;
}

// Why a request could not be routed to its model (ModelRegistry::acquire).
ApiError model_error(const Status& s) {
  ApiError e;
  e.message = s.message();
  if (s.code() == StatusCode::kNotFound) {
    e.http_status = 404;
    e.code = "model_not_found";
    e.param = "model";
    return e;
  }
  e.http_status = 503;
  e.type = "server_error";
  e.code = s.code() == StatusCode::kCancelled           ? "shutting_down"
           : s.code() == StatusCode::kResourceExhausted ? "model_queue_full"
                                                        : "model_load_failed";
  return e;
}

// The "model" of a JSON body, "" when absent or not a JSON object (the handler
// reports malformed bodies itself).
std::string body_model(const std::string& body, int32_t max_depth) {
  if (json_nesting_depth(body) > max_depth) return "";
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("model") || !j["model"].is_string()) return "";
  return j["model"].get<std::string>();
}

ApiError method_not_allowed(const std::string& method, const std::string& path) {
  ApiError e;
  e.http_status = 405;
  e.message = "method " + method + " is not allowed on " + path;
  e.code = "method_not_allowed";
  return e;
}

ApiError not_found(const std::string& code, const std::string& message) {
  ApiError e;
  e.http_status = 404;
  e.code = code;
  e.message = message;
  return e;
}

// An admit_prompt error as the client sees it: about `param` ("messages" or
// "prompt"); past the context, code context_length_exceeded; a template that
// cannot render the messages is still about the input (400, not 500).
ApiError prompt_error(const Status& s, const char* param) {
  ApiError e = error_from_status(s);
  if (s.code() == StatusCode::kOutOfRange) e.code = "context_length_exceeded";
  if (e.http_status >= 500) {
    e.http_status = 400;
    e.type = "invalid_request_error";
    e.code = "";
  }
  e.param = param;
  return e;
}

void send_json(const std::shared_ptr<ResponseWriter>& w, int status, const json& j) { w->send(json_response(status, j)); }
void send_error(const std::shared_ptr<ResponseWriter>& w, const ApiError& e) { w->send(error_response(e)); }

}  // namespace

HttpResponse http_error_response(int status, const std::string& message) {
  ApiError e;
  e.http_status = status;
  e.message = message;
  if (status == 413) e.code = "request_too_large";
  if (status == 408) e.code = "request_timeout";
  return error_response(e);
}


// The routes, in the order they are matched.
std::span<const OpenAIServer::Route> OpenAIServer::routes() {
  static const Route kRoutes[] = {
      // path                   prefix post   api    needs_model handler
      {"/health",               false, false, false, false, &OpenAIServer::health},
      {"/ready",                false, false, false, false, &OpenAIServer::ready},
      {"/metrics",              false, false, false, false, &OpenAIServer::metrics},
      {"/stats",                false, false, false, false, &OpenAIServer::stats},
      {"/v1/models",            false, false, true,  false, &OpenAIServer::list_models},
      {"/v1/models/",           true,  false, true,  false, &OpenAIServer::get_model},
      {"/tokenize",             false, true,  true,  true,  &OpenAIServer::tokenize},
      {"/detokenize",           false, true,  true,  true,  &OpenAIServer::detokenize},
      {"/v1/chat/completions",  false, true,  true,  true,  &OpenAIServer::chat_completions},
      {"/v1/completions",       false, true,  true,  true,  &OpenAIServer::completions},
  };
  return kRoutes;
}

bool OpenAIServer::authorized(const HttpRequest& req) const {
  if (ctx_->api_key.empty()) return true;
  const std::string* h = req.header("authorization");
  if (!h) return false;
  const std::string prefix = "Bearer ";
  if (h->size() < prefix.size() || h->compare(0, prefix.size(), prefix) != 0) return false;
  return constant_time_equal(h->substr(prefix.size()), ctx_->api_key);
}

void OpenAIServer::handle(int listener, HttpRequest&& req, std::shared_ptr<ResponseWriter> w) {
  if (!ctx_->cors_origin.empty()) {
    w->set_common_headers({{"Access-Control-Allow-Origin", ctx_->cors_origin},
                           {"Access-Control-Allow-Headers", "Authorization, Content-Type"},
                           {"Access-Control-Allow-Methods", "GET, POST, OPTIONS"}});
    if (req.method == "OPTIONS") {
      HttpResponse r;
      r.status = 204;
      w->send(std::move(r));
      return;
    }
  }
  const Route* route = nullptr;
  for (const Route& r : routes()) {
    if (r.prefix ? req.path.rfind(r.path, 0) == 0 : req.path == r.path) {
      route = &r;
      break;
    }
  }
  if (listener == kMetricsListener && (route == nullptr || route->api))
    return send_error(w, not_found("not_found", "the metrics port serves /metrics, /health, /ready and /stats only"));
  if (route == nullptr) {
    // The chat page (GET /, /webui/*) is served from assets compiled into the binary.
    if (HttpResponse page; listener == kMainListener && ctx_->webui && req.method == "GET" && webui_asset(req.path, &page)) {
      w->send(std::move(page));
      return;
    }
    return send_error(w, not_found("not_found", "no route for " + req.path));
  }
  if (route->api && !authorized(req))
    return send_error(w, error_from_status(Status(StatusCode::kUnauthenticated, "missing or invalid API key")));
  const bool method_ok = route->post ? req.method == "POST" : req.method == "GET" || req.method == "HEAD";
  if (!method_ok) return send_error(w, method_not_allowed(req.method, req.path));
  if (route->needs_model && !ctx_->ready.load(std::memory_order_acquire)) return send_error(w, not_ready());
  (this->*route->handler)(req, w);
}

// Liveness: 503 only while the models of the start load; 200 after, draining included
// (a draining process is alive: restarting it would cut its running requests).
void OpenAIServer::health(const HttpRequest&, const std::shared_ptr<ResponseWriter>& w) {
  if (ctx_->draining.load()) return send_json(w, 200, {{"status", "draining"}});
  if (!ctx_->ready.load(std::memory_order_acquire)) return send_json(w, 503, {{"status", "loading"}});
  send_json(w, 200, {{"status", "ok"}});
}

// Readiness: 200 only while new requests are welcome.
void OpenAIServer::ready(const HttpRequest&, const std::shared_ptr<ResponseWriter>& w) {
  if (ctx_->draining.load()) return send_json(w, 503, {{"status", "draining"}});
  if (!ctx_->ready.load(std::memory_order_acquire)) return send_json(w, 503, {{"status", "loading"}});
  send_json(w, 200, {{"status", "ok"}});
}

void OpenAIServer::metrics(const HttpRequest&, const std::shared_ptr<ResponseWriter>& w) {
  HttpResponse r;
  r.content_type = Metrics::kPrometheusContentType;
  r.body = ctx_->models ? ctx_->models->render_metrics() : "";
  w->send(std::move(r));
}

namespace {

json event_json(const ModelEvent& e) {
  json j = {{"event", model_event_name(e.kind)}, {"at_unix_ms", e.unix_ms}, {"seconds", e.seconds}};
  if (e.kind == ModelEvent::kUnloaded) j["reason"] = e.detail;
  if (e.kind == ModelEvent::kLoadFailed) j["error"] = e.detail;
  return j;
}

// An OpenAI model object plus what a server of several models shows: its state
// and its load and unload events.
json model_card(const ServerContext& ctx, const ModelStatus& m) {
  json events = json::array();
  for (const ModelEvent& e : m.events) events.push_back(event_json(e));
  json j = {{"id", m.name},
            {"object", "model"},
            {"created", ctx.created_unix_s},
            {"owned_by", "kr-serve"},
            {"state", model_state_name(m.state)},
            {"default", m.is_default},
            {"memory_share", m.memory_share},
            {"max_model_len", m.max_model_len > 0 ? json(m.max_model_len) : json(nullptr)},
            {"running", m.running},
            {"waiting", m.waiting + m.waiting_for_load},
            {"loads", m.loads},
            {"load_failures", m.load_failures},
            {"unloads", m.unloads},
            {"last_load_seconds", m.loads > 0 ? json(m.last_load_s) : json(nullptr)},
            {"last_used_unix_ms", m.last_used_unix_ms > 0 ? json(m.last_used_unix_ms) : json(nullptr)},
            {"events", std::move(events)}};
  if (m.state == ModelState::kFailed) j["error"] = m.error;
  return j;
}

}  // namespace

void OpenAIServer::list_models(const HttpRequest&, const std::shared_ptr<ResponseWriter>& w) {
  json data = json::array();
  for (const ModelStatus& m : ctx_->models->status()) data.push_back(model_card(*ctx_, m));
  send_json(w, 200, {{"object", "list"}, {"data", std::move(data)}});
}

void OpenAIServer::get_model(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w) {
  const std::string id = req.path.substr(std::string("/v1/models/").size());
  std::string names;
  for (const ModelStatus& m : ctx_->models->status()) {
    if (m.name == id) return send_json(w, 200, model_card(*ctx_, m));
    names += (names.empty() ? "'" : ", '") + m.name + "'";
  }
  ApiError e = not_found("model_not_found", "the model '" + id + "' does not exist; this server serves " + names);
  e.param = "model";
  send_error(w, e);
}

void OpenAIServer::chat_completions(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w) {
  generate(true, req, w);
}

void OpenAIServer::completions(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w) {
  generate(false, req, w);
}

// Parses the body here (HTTP worker), then routes it to its model: at once when
// the model is loaded, else after its load (on the registry's resume pool).
void OpenAIServer::generate(bool chat, const HttpRequest& http, const std::shared_ptr<ResponseWriter>& w) {
  auto req = std::make_shared<OpenAIRequest>();
  ApiError err;
  if (!parse_openai_request(http.body, chat, ctx_->limits, req.get(), &err)) return send_error(w, err);
  const std::string name = req->model;
  ctx_->models->acquire(name, [this, chat, req, w](StatusOr<std::shared_ptr<ModelLease>> lease) {
    if (!lease.ok()) return send_error(w, model_error(lease.status()));
    if (w->disconnected()) return;  // the client left while its model loaded
    start_generation(chat, std::move(*req), std::move(lease).value(), w);
  });
}

void OpenAIServer::start_generation(bool chat, OpenAIRequest req, std::shared_ptr<ModelLease> model,
                                    const std::shared_ptr<ResponseWriter>& w) {
  const PromptContext& pc = model->prompt();
  if (chat && !pc.chat)
    return send_error(w, bad_param("messages", "this model has no chat template; use /v1/completions"));
  for (int32_t id : req.stop_token_ids)
    if (id >= pc.vocab_size)
      return send_error(w, bad_param("stop_token_ids", "token ids must be integers in [0, " +
                                                           std::to_string(pc.vocab_size) + ")"));
  PromptInput in;
  if (chat) {
    in.messages = &req.messages;
    in.tools_json = req.tools_json;
    in.add_generation_prompt = req.add_generation_prompt;
  } else if (req.prompt_text) {
    in.text = &*req.prompt_text;
  } else {
    in.ids = &*req.prompt_ids;
  }
  in.max_tokens = req.max_tokens;
  auto admitted = admit_prompt(in, pc);
  if (!admitted.ok()) return send_error(w, prompt_error(admitted.status(), chat ? "messages" : "prompt"));
  req.max_tokens = admitted->max_tokens;
  if (req.min_tokens > *req.max_tokens)
    return send_error(w, bad_param("min_tokens", "'min_tokens' must not exceed max_tokens"));
  auto g = std::make_shared<Generation>(ctx_, std::move(model), std::move(req), std::move(admitted->ids), w);
  g->start();
}

// /tokenize and /detokenize: the body's "model" (default: the first model) picks the tokenizer.
void OpenAIServer::with_model(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w,
                              std::function<void(const ModelLease&)> fn) {
  ctx_->models->acquire(body_model(req.body, ctx_->limits.max_json_depth),
                        [w, fn = std::move(fn)](StatusOr<std::shared_ptr<ModelLease>> lease) {
                          if (!lease.ok()) return send_error(w, model_error(lease.status()));
                          fn(**lease);
                        });
}

void OpenAIServer::tokenize(const HttpRequest& http, const std::shared_ptr<ResponseWriter>& w) {
  with_model(http, w, [this, body = http.body, w](const ModelLease& model) { tokenize_with(body, model, w); });
}

void OpenAIServer::tokenize_with(const std::string& body, const ModelLease& model,
                                 const std::shared_ptr<ResponseWriter>& w) {
  const PromptContext& pc = model.prompt();
  try {
    if (json_nesting_depth(body) > ctx_->limits.max_json_depth) return send_error(w, bad_param("", "JSON nested too deep"));
    const json j = json::parse(body);
    if (!j.is_object()) return send_error(w, bad_param("", "the request body must be a JSON object"));
    PromptInput in;
    in.generation = false;
    for (const char* k : {"add_special_tokens", "add_special"}) {
      if (!j.contains(k)) continue;
      if (!j[k].is_boolean()) return send_error(w, bad_param(k, std::string("'") + k + "' must be a boolean"));
      in.add_special_tokens = j[k].get<bool>();
    }
    OpenAIRequest chat;
    std::string text;
    if (j.contains("messages")) {
      ApiError err;
      if (!parse_openai_request(body, true, ctx_->limits, &chat, &err)) return send_error(w, err);
      if (!pc.chat) return send_error(w, bad_param("messages", "this model has no chat template"));
      in.messages = &chat.messages;
      in.tools_json = chat.tools_json;
      in.add_generation_prompt = chat.add_generation_prompt;
    } else {
      const json* t = nullptr;
      for (const char* k : {"prompt", "content"})
        if (j.contains(k)) t = &j[k];
      if (!t || !t->is_string()) return send_error(w, bad_param("prompt", "'prompt' must be a string"));
      text = t->get<std::string>();
      in.text = &text;
    }
    auto admitted = admit_prompt(in, pc);
    if (!admitted.ok()) return send_error(w, prompt_error(admitted.status(), "messages"));
    const std::vector<int32_t>& ids = admitted->ids;
    send_json(w, 200, {{"tokens", ids}, {"count", ids.size()}, {"max_model_len", pc.max_model_len}});
  } catch (const json::exception& e) {
    send_error(w, bad_param("", std::string("malformed JSON: ") + e.what()));
  }
}

void OpenAIServer::detokenize(const HttpRequest& http, const std::shared_ptr<ResponseWriter>& w) {
  with_model(http, w, [this, body = http.body, w](const ModelLease& model) { detokenize_with(body, model, w); });
}

void OpenAIServer::detokenize_with(const std::string& body, const ModelLease& model,
                                   const std::shared_ptr<ResponseWriter>& w) {
  const PromptContext& pc = model.prompt();
  try {
    if (json_nesting_depth(body) > ctx_->limits.max_json_depth) return send_error(w, bad_param("", "JSON nested too deep"));
    const json j = json::parse(body);
    if (!j.is_object() || !j.contains("tokens") || !j["tokens"].is_array())
      return send_error(w, bad_param("tokens", "'tokens' must be an array of token ids"));
    std::vector<int32_t> ids;
    for (const json& v : j["tokens"]) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= pc.vocab_size)
        return send_error(w, bad_param("tokens", "token ids must be integers in [0, " +
                                                     std::to_string(pc.vocab_size) + ")"));
      ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
    }
    const std::string text = pc.tokenizer->decode(ids, /*skip_special_tokens=*/false);
    send_json(w, 200, {{"prompt", text}, {"content", text}});
  } catch (const json::exception& e) {
    send_error(w, bad_param("", std::string("malformed JSON: ") + e.what()));
  }
}

void OpenAIServer::stats(const HttpRequest&, const std::shared_ptr<ResponseWriter>& w) {
  if (!ctx_->models) return send_json(w, 200, json::object());
  // The figures of the default model; "models" has every model's state and queue.
  const StatsSnapshot s = ctx_->models->default_metrics()->stats();
  json batch = json::object();
  for (const auto& [size, steps] : s.batch_size_counts) batch[std::to_string(size)] = steps;
  json j = {
      {"uptime_s", s.uptime_s},
      {"model", ctx_->models->default_name()},
      {"version", build_version()},
      {"ready", ctx_->ready.load()},
      {"latency_s", {{"p50", s.latency_p50_s}, {"p95", s.latency_p95_s}, {"p99", s.latency_p99_s},
                     {"min", s.latency_min_s}, {"max", s.latency_max_s}, {"mean", s.latency_mean_s}}},
      {"ttft_s", {{"p50", s.ttft_p50_s}, {"p95", s.ttft_p95_s}, {"p99", s.ttft_p99_s}}},
      {"tokens_per_s", {{"5s", s.tokens_per_s_5s}, {"30s", s.tokens_per_s_30s}, {"60s", s.tokens_per_s_60s}}},
      {"requests_per_s", {{"5s", s.requests_per_s_5s}, {"30s", s.requests_per_s_30s}, {"60s", s.requests_per_s_60s}}},
      {"batch_size_distribution", batch},
      {"queue_depth", s.queue_depth},
      {"running", s.running},
      {"requests_finished", s.requests_finished},
      {"requests_failed", s.requests_failed},
      {"prompt_tokens", s.prompt_tokens},
      {"generation_tokens", s.generation_tokens},
      {"scheduler", {{"scheduler_on", s.scheduler.scheduler_on}, {"window_ms", s.scheduler.window_ms},
                     {"batch_size", s.scheduler.admissions_per_step}, {"auto_tune", s.scheduler.auto_tune},
                     {"adaptive_window", s.scheduler.adaptive_window},
                     {"ema_p99_ttft_ms", s.scheduler.ema_p99_ttft_ms}, {"ema_p99_itl_ms", s.scheduler.ema_p99_itl_ms}}},
  };
  json models = json::array();
  for (const ModelStatus& m : ctx_->models->status()) {
    json e = {{"running", m.running}, {"waiting", m.waiting}, {"free_kv_blocks", m.free_kv_blocks}};
    if (m.is_default && m.state == ModelState::kLoaded) j["engine"] = e;
    e["name"] = m.name;
    e["state"] = model_state_name(m.state);
    models.push_back(std::move(e));
  }
  j["models"] = std::move(models);
  send_json(w, 200, j);
}

}  // namespace kr
