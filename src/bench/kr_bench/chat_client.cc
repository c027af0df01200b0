#include "bench/kr_bench/chat_client.h"

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "bench/kr_bench/sse_parser.h"
#include "bench/kr_bench/stream_event.h"

namespace kr::bench {
namespace {

using json = nlohmann::json;

double ms_between(int64_t a_ns, int64_t b_ns) { return static_cast<double>(b_ns - a_ns) / 1e6; }

// State of one stream while its events arrive.
struct StreamState {
  RequestResult* out = nullptr;
  int64_t last_chunk_ns = 0;
  bool done = false;  // saw [DONE]
  std::string error_body;

  void on_event(std::string_view data, int64_t now_ns) {
    const StreamEvent e = classify_stream_event(data);
    if (e.kind == StreamEvent::Kind::kDone) done = true;
    if (e.kind == StreamEvent::Kind::kError) error_body = e.error;
    if (e.kind != StreamEvent::Kind::kChunk) return;
    const json& j = e.chunk;
    if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
      if (auto c = u->find("completion_tokens"); c != u->end() && c->is_number_integer()) {
        out->output_tokens = c->get<int64_t>();
        out->tokens_from_usage = true;
      }
      if (auto p = u->find("prompt_tokens"); p != u->end() && p->is_number_integer())
        out->prompt_tokens = p->get<int64_t>();
    }
    auto choices = j.find("choices");
    if (choices == j.end() || !choices->is_array() || choices->empty()) return;
    const json& c0 = (*choices)[0];
    if (auto fr = c0.find("finish_reason"); fr != c0.end() && fr->is_string()) out->finish_reason = *fr;
    std::string piece;
    if (auto d = c0.find("delta"); d != c0.end() && d->is_object()) {
      if (auto t = d->find("content"); t != d->end() && t->is_string()) piece = t->get<std::string>();
    } else if (auto t = c0.find("text"); t != c0.end() && t->is_string()) {
      piece = t->get<std::string>();  // legacy completions stream
    }
    if (piece.empty()) return;
    if (out->content_chunks == 0) {
      out->ttft_ms = ms_between(out->start_ns, now_ns);
    } else {
      out->itl_ms.push_back(ms_between(last_chunk_ns, now_ns));
    }
    last_chunk_ns = now_ns;
    ++out->content_chunks;
    out->text += piece;
  }
};

}  // namespace

double RequestResult::tpot_ms() const {
  if (output_tokens < 2) return 0;
  return (e2e_ms - ttft_ms) / static_cast<double>(output_tokens - 1);
}

double RequestResult::tokens_per_s() const {
  if (e2e_ms <= 0) return 0;
  return static_cast<double>(output_tokens) / (e2e_ms / 1e3);
}

std::string chat_request_body(const ChatRequest& req) {
  json body = {
      {"model", req.model},
      {"messages", json::array({{{"role", "user"}, {"content", req.prompt}}})},
      {"max_tokens", req.max_tokens},
      {"temperature", req.temperature},
      {"stream", true},
      {"stream_options", {{"include_usage", true}}},
  };
  if (req.seed) body["seed"] = *req.seed;
  // Not in OpenAI's API; vLLM, llama-server and kr-serve accept it, and it makes every request
  // produce exactly max_tokens tokens so configurations compare like for like.
  if (req.ignore_eos) body["ignore_eos"] = true;
  if (!req.extra_json.empty()) {
    const json extra = json::parse(req.extra_json, nullptr, /*allow_exceptions=*/false);
    if (extra.is_object())
      for (auto it = extra.begin(); it != extra.end(); ++it) body[it.key()] = it.value();
  }
  return body.dump();
}

RequestResult run_chat_request(const Endpoint& ep, const ChatRequest& req, int timeout_ms) {
  RequestResult out;
  HttpRequest http;
  http.method = "POST";
  http.path = "/v1/chat/completions";
  http.headers = {{"Content-Type", "application/json"}, {"Accept", "text/event-stream"}};
  http.body = chat_request_body(req);

  StreamState st;
  st.out = &out;
  SseParser parser;
  std::string plain_body;  // kept for error responses (not SSE)
  const auto on_event = [&](std::string_view data) { st.on_event(data, steady_now_ns()); };
  out.start_ns = steady_now_ns();
  StatusOr<HttpResponseHead> head = http_fetch(
      ep, http,
      [&](std::string_view bytes) {
        if (plain_body.size() < 4096) plain_body.append(bytes.substr(0, 4096 - plain_body.size()));
        parser.feed(bytes, on_event);
        return !st.done && st.error_body.empty();
      },
      timeout_ms);
  parser.finish(on_event);
  const int64_t end_ns = steady_now_ns();
  out.e2e_ms = ms_between(out.start_ns, end_ns);
  if (!out.tokens_from_usage) out.output_tokens = out.content_chunks;

  if (head.ok()) out.http_status = head->status;
  out.error = stream_request_error(head, plain_body, st.error_body);
  if (!out.error.empty()) return out;
  if (out.content_chunks == 0) {
    out.error = "stream ended without content";
    return out;
  }
  out.ok = true;
  return out;
}

}  // namespace kr::bench
