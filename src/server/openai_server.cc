#include "server/openai_server.h"

#include <nlohmann/json.hpp>

#include "base/build_info.h"
#include "engine/engine.h"
#include "metrics/metrics.h"
#include "server/generation.h"
#include "server/webui.h"
#include "tokenizer/chat_prompt.h"
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

ApiError method_not_allowed(const std::string& method, const std::string& path) {
  ApiError e;
  e.http_status = 405;
  e.message = "method " + method + " is not allowed on " + path;
  e.code = "method_not_allowed";
  return e;
}

}  // namespace

HttpResponse http_error_response(int status, const std::string& message) {
  ApiError e;
  e.http_status = status;
  e.message = message;
  if (status == 413) e.code = "request_too_large";
  if (status == 408) e.code = "request_timeout";
  return error_response(e);
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
  std::vector<std::pair<std::string, std::string>> cors;
  if (!ctx_->cors_origin.empty()) {
    cors = {{"Access-Control-Allow-Origin", ctx_->cors_origin},
            {"Access-Control-Allow-Headers", "Authorization, Content-Type"},
            {"Access-Control-Allow-Methods", "GET, POST, OPTIONS"}};
    if (req.method == "OPTIONS") {
      HttpResponse r;
      r.status = 204;
      r.headers = cors;
      w->send(std::move(r));
      return;
    }
  }
  auto send = [&](HttpResponse r) {
    r.headers.insert(r.headers.end(), cors.begin(), cors.end());
    w->send(std::move(r));
  };
  bool handled = false;
  HttpResponse simple = route_simple(listener, req, &handled);
  if (handled) {
    send(std::move(simple));
    return;
  }
  const bool chat = req.path == "/v1/chat/completions";
  if (chat || req.path == "/v1/completions") {
    if (req.method != "POST") return send(error_response(method_not_allowed(req.method, req.path)));
    if (!authorized(req)) {
      ApiError e = error_from_status(Status(StatusCode::kUnauthenticated, "missing or invalid API key"));
      return send(error_response(e));
    }
    if (!ctx_->ready.load(std::memory_order_acquire)) return send(error_response(not_ready()));
    generate(chat, req, w);
    return;
  }
  if (HttpResponse page; ctx_->webui && req.method == "GET" && webui_asset(req.path, &page)) return send(std::move(page));
  ApiError e;
  e.http_status = 404;
  e.code = "not_found";
  e.message = "no route for " + req.path;
  send(error_response(e));
}

HttpResponse OpenAIServer::route_simple(int listener, const HttpRequest& req, bool* handled) {
  *handled = true;
  const std::string& p = req.path;
  const bool get = req.method == "GET" || req.method == "HEAD";
  const bool ready = ctx_->ready.load(std::memory_order_acquire);
  if (p == "/health" || p == "/ready") {
    if (!get) return error_response(method_not_allowed(req.method, p));
    if (ctx_->draining.load()) return json_response(503, {{"status", "draining"}});
    return ready ? json_response(200, {{"status", "ok"}}) : json_response(503, {{"status", "loading"}});
  }
  if (p == "/metrics") {
    if (!get) return error_response(method_not_allowed(req.method, p));
    HttpResponse r;
    r.content_type = Metrics::kPrometheusContentType;
    r.body = ctx_->metrics ? ctx_->metrics->render_prometheus() : "";
    return r;
  }
  if (p == "/stats") {
    if (!get) return error_response(method_not_allowed(req.method, p));
    return stats();
  }
  if (listener == kMetricsListener) {
    ApiError e;
    e.http_status = 404;
    e.code = "not_found";
    e.message = "the metrics port serves /metrics, /health, /ready and /stats only";
    return error_response(e);
  }
  const bool api = p == "/v1/models" || p == "/tokenize" || p == "/detokenize" || p.rfind("/v1/models/", 0) == 0;
  if (!api) {
    *handled = false;
    return {};
  }
  if (!authorized(req))
    return error_response(error_from_status(Status(StatusCode::kUnauthenticated, "missing or invalid API key")));
  if (p == "/v1/models" || p.rfind("/v1/models/", 0) == 0) {
    if (!get) return error_response(method_not_allowed(req.method, p));
    json model = {{"id", ctx_->served_model_name}, {"object", "model"}, {"created", ctx_->created_unix_s},
                  {"owned_by", "kr-serve"}, {"max_model_len", ctx_->max_model_len}};
    if (p == "/v1/models") return json_response(200, {{"object", "list"}, {"data", json::array({model})}});
    if (p.substr(11) == ctx_->served_model_name) return json_response(200, model);
    ApiError e;
    e.http_status = 404;
    e.code = "model_not_found";
    e.param = "model";
    e.message = "the model '" + p.substr(11) + "' does not exist";
    return error_response(e);
  }
  if (req.method != "POST") return error_response(method_not_allowed(req.method, p));
  if (!ready) return error_response(not_ready());
  return p == "/tokenize" ? tokenize(req) : detokenize(req);
}

void OpenAIServer::generate(bool chat, const HttpRequest& http, std::shared_ptr<ResponseWriter> w) {
  OpenAIRequest req;
  ApiError err;
  RequestLimits limits = ctx_->limits;
  if (!parse_openai_request(http.body, chat, limits, &req, &err)) return w->send(error_response(err));
  if (!req.model.empty() && req.model != ctx_->served_model_name) {
    ApiError e;
    e.http_status = 404;
    e.type = "invalid_request_error";
    e.code = "model_not_found";
    e.param = "model";
    e.message = "the model '" + req.model + "' does not exist (this server serves '" + ctx_->served_model_name + "')";
    return w->send(error_response(e));
  }
  std::vector<int32_t> ids;
  if (chat) {
    if (!ctx_->chat) return w->send(error_response(bad_param("messages", "this model has no chat template; use /v1/completions")));
    auto p = ctx_->chat->build(req.messages, req.tools_json, req.add_generation_prompt);
    if (!p.ok()) {
      ApiError e = error_from_status(p.status());
      if (e.http_status >= 500) {
        // A template that cannot render these messages is still about the input.
        e.http_status = 400;
        e.type = "invalid_request_error";
        e.code = "";
      }
      e.param = "messages";
      return w->send(error_response(e));
    }
    ids = std::move(p->ids);
  } else if (req.prompt_text) {
    ids = ctx_->tokenizer->encode(*req.prompt_text, /*parse_special=*/true);
    if (ctx_->bos_id && (ids.empty() || ids[0] != *ctx_->bos_id)) ids.insert(ids.begin(), *ctx_->bos_id);
  } else {
    ids = *req.prompt_ids;
  }
  if (ids.empty()) return w->send(error_response(bad_param(chat ? "messages" : "prompt", "the prompt has no tokens")));
  const int64_t prompt_len = static_cast<int64_t>(ids.size());
  const int64_t room = ctx_->max_model_len - prompt_len;
  if (room < 1 || (req.max_tokens && prompt_len + *req.max_tokens > ctx_->max_model_len)) {
    ApiError e = bad_param(chat ? "messages" : "prompt",
                           "This model's maximum context length is " + std::to_string(ctx_->max_model_len) +
                               " tokens. However, you requested " +
                               std::to_string(prompt_len + req.max_tokens.value_or(1)) + " tokens (" +
                               std::to_string(prompt_len) + " in the prompt, " +
                               std::to_string(req.max_tokens.value_or(1)) + " for the completion).");
    e.code = "context_length_exceeded";
    return w->send(error_response(e));
  }
  if (!req.max_tokens) req.max_tokens = static_cast<int32_t>(room);
  if (req.min_tokens > *req.max_tokens) return w->send(error_response(bad_param("min_tokens", "'min_tokens' must not exceed max_tokens")));
  auto g = std::make_shared<Generation>(ctx_, std::move(req), std::move(ids), std::move(w));
  g->start();
}

HttpResponse OpenAIServer::tokenize(const HttpRequest& req) {
  try {
    if (json_nesting_depth(req.body) > ctx_->limits.max_json_depth) return error_response(bad_param("", "JSON nested too deep"));
    const json j = json::parse(req.body);
    if (!j.is_object()) return error_response(bad_param("", "the request body must be a JSON object"));
    const json* text = nullptr;
    for (const char* k : {"prompt", "content"})
      if (j.contains(k)) text = &j[k];
    bool add_special = true;
    for (const char* k : {"add_special_tokens", "add_special"}) {
      if (!j.contains(k)) continue;
      if (!j[k].is_boolean()) return error_response(bad_param(k, std::string("'") + k + "' must be a boolean"));
      add_special = j[k].get<bool>();
    }
    std::vector<int32_t> ids;
    if (j.contains("messages")) {
      OpenAIRequest r;
      ApiError err;
      if (!parse_openai_request(req.body, true, ctx_->limits, &r, &err)) return error_response(err);
      if (!ctx_->chat) return error_response(bad_param("messages", "this model has no chat template"));
      auto p = ctx_->chat->build(r.messages, r.tools_json, r.add_generation_prompt);
      if (!p.ok()) return error_response(bad_param("messages", p.status().message()));
      ids = std::move(p->ids);
    } else {
      if (!text || !text->is_string()) return error_response(bad_param("prompt", "'prompt' must be a string"));
      ids = ctx_->tokenizer->encode(text->get<std::string>(), /*parse_special=*/true);
      if (add_special && ctx_->bos_id && (ids.empty() || ids[0] != *ctx_->bos_id)) ids.insert(ids.begin(), *ctx_->bos_id);
    }
    json out = {{"tokens", ids}, {"count", ids.size()}, {"max_model_len", ctx_->max_model_len}};
    return json_response(200, out);
  } catch (const json::exception& e) {
    return error_response(bad_param("", std::string("malformed JSON: ") + e.what()));
  }
}

HttpResponse OpenAIServer::detokenize(const HttpRequest& req) {
  try {
    if (json_nesting_depth(req.body) > ctx_->limits.max_json_depth) return error_response(bad_param("", "JSON nested too deep"));
    const json j = json::parse(req.body);
    if (!j.is_object() || !j.contains("tokens") || !j["tokens"].is_array())
      return error_response(bad_param("tokens", "'tokens' must be an array of token ids"));
    std::vector<int32_t> ids;
    for (const json& v : j["tokens"]) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= ctx_->limits.vocab_size)
        return error_response(bad_param("tokens", "token ids must be integers in [0, " + std::to_string(ctx_->limits.vocab_size) + ")"));
      ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
    }
    const std::string text = ctx_->tokenizer->decode(ids, /*skip_special_tokens=*/false);
    return json_response(200, {{"prompt", text}, {"content", text}});
  } catch (const json::exception& e) {
    return error_response(bad_param("", std::string("malformed JSON: ") + e.what()));
  }
}

HttpResponse OpenAIServer::stats() {
  if (!ctx_->metrics) return json_response(200, json::object());
  const StatsSnapshot s = ctx_->metrics->stats();
  json batch = json::object();
  for (const auto& [size, steps] : s.batch_size_counts) batch[std::to_string(size)] = steps;
  json j = {
      {"uptime_s", s.uptime_s},
      {"model", ctx_->served_model_name},
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
                     {"batch_size", s.scheduler.batch_size}, {"auto_tune", s.scheduler.auto_tune},
                     {"adaptive_window", s.scheduler.adaptive_window},
                     {"ema_p99_ttft_ms", s.scheduler.ema_p99_ttft_ms}, {"ema_p99_itl_ms", s.scheduler.ema_p99_itl_ms}}},
  };
  if (ctx_->engine && ctx_->ready.load(std::memory_order_acquire)) {
    j["engine"] = {{"running", ctx_->engine->num_running()}, {"waiting", ctx_->engine->num_waiting()},
                   {"free_kv_blocks", ctx_->engine->num_free_blocks()}};
  }
  return json_response(200, j);
}

}  // namespace kr
