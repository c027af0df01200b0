#include "bench/kr_bench/token_client.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "bench/kr_bench/sse_parser.h"
#include "bench/kr_bench/stream_event.h"

namespace kr::bench {
namespace {

using json = nlohmann::json;

double ms_between(int64_t a_ns, int64_t b_ns) { return static_cast<double>(b_ns - a_ns) / 1e6; }

// One token's top_logprobs object ({"token_id:N": logprob, ...}, in no useful order): the best
// logprob minus the second best; NaN with fewer than two entries.
double top2_margin(const json& top) {
  if (!top.is_object()) return std::nan("");
  double first = -INFINITY, second = -INFINITY;
  int n = 0;
  for (const json& v : top) {  // an object iterates over its values
    if (!v.is_number()) continue;
    const double lp = v.get<double>();
    ++n;
    if (lp > first) {
      second = first;
      first = lp;
    } else if (lp > second) {
      second = lp;
    }
  }
  return n >= 2 ? first - second : std::nan("");
}

struct TokenStream {
  TokenCompletionResult* out = nullptr;
  int64_t last_ns = 0;
  bool done = false;
  std::string error_body;

  void on_event(std::string_view data, int64_t now_ns) {
    const StreamEvent e = classify_stream_event(data);
    if (e.kind == StreamEvent::Kind::kDone) done = true;
    if (e.kind == StreamEvent::Kind::kError) error_body = e.error;
    if (e.kind != StreamEvent::Kind::kChunk) return;
    const json& j = e.chunk;
    RequestResult& r = out->timing;
    if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
      if (auto c = u->find("completion_tokens"); c != u->end() && c->is_number_integer()) {
        r.output_tokens = c->get<int64_t>();
        r.tokens_from_usage = true;
      }
      if (auto p = u->find("prompt_tokens"); p != u->end() && p->is_number_integer()) r.prompt_tokens = *p;
      if (auto d = u->find("prompt_tokens_details"); d != u->end() && d->is_object())
        if (auto c = d->find("cached_tokens"); c != d->end() && c->is_number_integer()) out->cached_tokens = *c;
    }
    auto choices = j.find("choices");
    if (choices == j.end() || !choices->is_array() || choices->empty()) return;
    const json& c0 = (*choices)[0];
    if (auto fr = c0.find("finish_reason"); fr != c0.end() && fr->is_string()) r.finish_reason = *fr;
    size_t new_tokens = 0;
    if (auto lp = c0.find("logprobs"); lp != c0.end() && lp->is_object()) {
      const auto tops = lp->find("top_logprobs");
      if (auto toks = lp->find("tokens"); toks != lp->end() && toks->is_array()) {
        for (size_t i = 0; i < toks->size(); ++i) {
          const json& t = (*toks)[i];
          if (!t.is_string()) continue;
          const std::string s = t.get<std::string>();
          if (s.rfind("token_id:", 0) != 0) continue;
          out->output_ids.push_back(static_cast<int32_t>(std::stol(s.substr(9))));
          out->margins.push_back(tops != lp->end() && tops->is_array() && i < tops->size() ? top2_margin((*tops)[i])
                                                                                             : std::nan(""));
          ++new_tokens;
        }
      }
    }
    if (auto t = c0.find("text"); t != c0.end() && t->is_string()) r.text += t->get<std::string>();
    if (new_tokens == 0) return;
    if (r.content_chunks == 0) {
      r.ttft_ms = ms_between(r.start_ns, now_ns);
    } else {
      r.itl_ms.push_back(ms_between(last_ns, now_ns));
    }
    last_ns = now_ns;
    ++r.content_chunks;
  }
};

}  // namespace

std::string token_completion_body(const TokenCompletionRequest& req) {
  json body = {
      {"model", req.model},
      {"prompt", req.prompt_ids},
      {"max_tokens", req.max_tokens},
      {"temperature", 0},
      {"stream", true},
      {"stream_options", {{"include_usage", true}}},
      {"ignore_eos", true},
      {"logprobs", req.top_logprobs},
      {"return_tokens_as_token_ids", true},
  };
  if (!req.cache_salt.empty()) body["cache_salt"] = req.cache_salt;
  return body.dump();
}

TokenCompletionResult run_token_completion(const Endpoint& ep, const TokenCompletionRequest& req, int timeout_ms) {
  TokenCompletionResult out;
  RequestResult& r = out.timing;
  HttpRequest http;
  http.method = "POST";
  http.path = "/v1/completions";
  http.headers = {{"Content-Type", "application/json"}, {"Accept", "text/event-stream"}};
  http.body = token_completion_body(req);
  TokenStream st;
  st.out = &out;
  SseParser parser;
  std::string plain_body;
  const auto on_event = [&](std::string_view data) { st.on_event(data, steady_now_ns()); };
  r.start_ns = steady_now_ns();
  StatusOr<HttpResponseHead> head = http_fetch(
      ep, http,
      [&](std::string_view bytes) {
        if (plain_body.size() < 4096) plain_body.append(bytes.substr(0, 4096 - plain_body.size()));
        parser.feed(bytes, on_event);
        return !st.done && st.error_body.empty();
      },
      timeout_ms);
  parser.finish(on_event);
  r.e2e_ms = ms_between(r.start_ns, steady_now_ns());
  if (!r.tokens_from_usage) r.output_tokens = static_cast<int64_t>(out.output_ids.size());
  if (head.ok()) r.http_status = head->status;
  r.error = stream_request_error(head, plain_body, st.error_body);
  if (!r.error.empty()) return out;
  if (out.output_ids.empty()) {
    r.error = "stream ended without tokens (does the server support return_tokens_as_token_ids?)";
    return out;
  }
  r.ok = true;
  return out;
}

}  // namespace kr::bench
