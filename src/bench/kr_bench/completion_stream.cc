#include "bench/kr_bench/completion_stream.h"

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "bench/kr_bench/sse_parser.h"
#include "bench/kr_bench/stream_event.h"

namespace kr::bench {

using json = nlohmann::json;

std::string completion_request_body(const CompletionRequest& req) {
  json body = {
      {"model", req.model},
      {"prompt", req.prompt_ids},
      {"max_tokens", req.max_tokens},
      {"temperature", 0.0},
      {"logprobs", 0},
      {"stream", true},
      {"stream_options", {{"include_usage", true}}},
  };
  if (req.ignore_eos) body["ignore_eos"] = true;
  return body.dump();
}

CompletionResult run_completion_stream(const Endpoint& ep, const CompletionRequest& req, int timeout_ms,
                                       const std::function<bool(const TokenChunk&, int64_t)>& on_chunk) {
  CompletionResult out;
  HttpRequest http;
  http.method = "POST";
  http.path = "/v1/completions";
  http.headers = {{"Content-Type", "application/json"}, {"Accept", "text/event-stream"}};
  http.body = completion_request_body(req);
  SseParser parser;
  std::string plain_body, error_body;
  bool done = false, stop = false;
  int64_t tokens = 0;
  const auto on_event = [&](std::string_view data) {
    const StreamEvent e = classify_stream_event(data);
    if (e.kind == StreamEvent::Kind::kDone) done = true;
    if (e.kind == StreamEvent::Kind::kError) error_body = e.error;
    if (e.kind != StreamEvent::Kind::kChunk) return;
    const json& j = e.chunk;
    if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
      out.prompt_tokens = u->value("prompt_tokens", int64_t{0});
      out.completion_tokens = u->value("completion_tokens", int64_t{0});
    }
    auto choices = j.find("choices");
    if (choices == j.end() || !choices->is_array() || choices->empty()) return;
    const json& c0 = (*choices)[0];
    int n = 0;
    if (auto lp = c0.find("logprobs"); lp != c0.end() && lp->is_object()) {
      if (auto t = lp->find("tokens"); t != lp->end() && t->is_array()) n = static_cast<int>(t->size());
    }
    if (n == 0)
      if (auto t = c0.find("text"); t != c0.end() && t->is_string() && !t->get<std::string>().empty()) n = 1;
    if (n == 0) return;  // the finish chunk
    TokenChunk ch{steady_now_ns(), n};
    tokens += n;
    out.chunks.push_back(ch);
    if (on_chunk && !on_chunk(ch, tokens)) stop = true;
  };
  out.start_ns = steady_now_ns();
  StatusOr<HttpResponseHead> head = http_fetch(
      ep, http,
      [&](std::string_view bytes) {
        if (plain_body.size() < 4096) plain_body.append(bytes.substr(0, 4096 - plain_body.size()));
        parser.feed(bytes, on_event);
        return !done && !stop && error_body.empty();
      },
      timeout_ms);
  if (!stop) parser.finish(on_event);
  out.end_ns = steady_now_ns();
  if (out.completion_tokens == 0) out.completion_tokens = tokens;
  out.error = stream_request_error(head, plain_body, error_body);
  if (!out.error.empty()) return out;
  if (out.chunks.empty()) {
    out.error = "stream ended without tokens";
    return out;
  }
  out.ok = true;
  return out;
}

}  // namespace kr::bench
