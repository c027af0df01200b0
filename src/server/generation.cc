#include "server/generation.h"

#include <chrono>
#include <cmath>
#include <random>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "server/stop_matcher.h"
#include "tokenizer/tokenizer.h"

namespace kr {
namespace {

using json = nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string random_id(const char* prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string s = prefix;
  for (int i = 0; i < 24; ++i) s += hex[rng() % 16];
  return s;
}

// OpenAI reports -9999 where a probability underflows; JSON has no -inf.
double finite_logprob(float lp) { return std::isfinite(lp) ? lp : -9999.0; }

std::vector<int> byte_values(const std::string& s) {
  std::vector<int> v;
  for (unsigned char ch : s) v.push_back(ch);
  return v;
}

}  // namespace

struct Generation::Choice {
  int index = 0;
  RequestId engine_id = 0;
  std::unique_ptr<IncrementalDetokenizer> detok;
  std::unique_ptr<StopMatcher> stop;
  std::string text;           // everything emitted so far (non-streaming answer)
  json logprobs_items = json::array();  // chat: content items
  json cmpl_tokens = json::array(), cmpl_token_logprobs = json::array(), cmpl_top = json::array(),
       cmpl_offsets = json::array();
  int32_t completion_tokens = 0;
  int32_t prompt_tokens = 0;
  bool finished = false;
  std::string finish_reason;
};

Generation::Generation(ServerContext* ctx, OpenAIRequest req, std::vector<int32_t> prompt_ids,
                       std::shared_ptr<ResponseWriter> writer)
    : ctx_(ctx), req_(std::move(req)), prompt_ids_(std::move(prompt_ids)), writer_(std::move(writer)) {
  id_ = random_id(req_.chat ? "chatcmpl-" : "cmpl-");
  created_s_ = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (int i = 0; i < req_.n; ++i) {
    auto c = std::make_unique<Choice>();
    c->index = i;
    c->detok = std::make_unique<IncrementalDetokenizer>(ctx_->tokenizer, req_.skip_special_tokens);
    c->stop = std::make_unique<StopMatcher>(req_.stop);
    c->prompt_tokens = static_cast<int32_t>(prompt_ids_.size());
    choices_.push_back(std::move(c));
  }
}

Generation::~Generation() = default;

void Generation::start() {
  auto self = shared_from_this();
  std::weak_ptr<Generation> weak = self;
  // Submit every choice; a refusal cancels those already in.
  for (auto& c : choices_) {
    GenerationRequest g;
    g.id = c->engine_id = ctx_->next_request_id.fetch_add(1);
    g.prompt_ids = prompt_ids_;
    g.sampling = req_.sampling;
    if (req_.sampling.seed) g.sampling.seed = *req_.sampling.seed + static_cast<uint64_t>(c->index);
    g.max_tokens = *req_.max_tokens;
    g.min_tokens = req_.min_tokens;
    g.ignore_eos = req_.ignore_eos;
    g.stop_token_ids = req_.stop_token_ids;
    g.priority = req_.priority;
    const int index = c->index;
    g.on_event = [self, index](TokenEvent&& e) { self->on_event(index, std::move(e)); };
    Status s = ctx_->engine->submit(std::move(g));
    if (!s.ok()) {
      for (auto& d : choices_) {
        if (d.get() == c.get()) break;
        d->finished = true;
        ctx_->engine->cancel(d->engine_id);
      }
      c->finished = true;
      ApiError e = error_from_status(s);
      if (s.code() == StatusCode::kOutOfRange) {
        e.code = "context_length_exceeded";
        e.param = req_.chat ? "messages" : "prompt";
      }
      done_ = true;
      writer_->send(error_response(e));
      release_events();
      return;
    }
  }
  writer_->set_on_disconnect([weak] {
    if (auto g = weak.lock()) g->cancel();
  });
  if (req_.stream) {
    writer_->start_stream(200, "text/event-stream");
    if (req_.chat)
      for (auto& c : choices_) writer_->write("data: " + chunk_json(c->index, "", "", nullptr, true) + "\n\n");
  }
  release_events();
}

void Generation::release_events() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    started_ = true;
    if (queue_.empty() || scheduled_) return;
    scheduled_ = true;
  }
  ctx_->event_pool->post([self = shared_from_this()] { self->drain(); });
}

void Generation::cancel() {
  for (auto& c : choices_) ctx_->engine->cancel(c->engine_id);
}

void Generation::on_event(int choice, TokenEvent&& event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.emplace_back(choice, std::move(event));
    if (scheduled_ || !started_) return;  // start() releases what came before the response began
    scheduled_ = true;
  }
  ctx_->event_pool->post([self = shared_from_this()] { self->drain(); });
}

void Generation::drain() {
  while (true) {
    std::vector<std::pair<int, TokenEvent>> batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) {
        scheduled_ = false;
        return;
      }
      batch.swap(queue_);
    }
    for (auto& [i, e] : batch) process(i, e);
  }
}

std::string Generation::chunk_json(int choice, const std::string& text, const std::string& logprobs_json,
                                   const char* finish_reason, bool role) const {
  json j;
  j["id"] = id_;
  j["object"] = req_.chat ? "chat.completion.chunk" : "text_completion";
  j["created"] = created_s_;
  j["model"] = ctx_->served_model_name;
  json ch;
  ch["index"] = choice;
  if (req_.chat) {
    json delta = json::object();
    if (role) delta["role"] = "assistant";
    if (role || !text.empty()) delta["content"] = text;
    ch["delta"] = delta;
  } else {
    ch["text"] = text;
  }
  ch["logprobs"] = logprobs_json.empty() ? json(nullptr) : json::parse(logprobs_json);
  ch["finish_reason"] = finish_reason ? json(finish_reason) : json(nullptr);
  j["choices"] = json::array({ch});
  if (req_.include_usage) j["usage"] = nullptr;
  return dump(j);
}

void Generation::process(int index, TokenEvent& event) {
  if (done_) return;
  Choice& c = *choices_[index];
  if (c.finished) return;
  if (event.prompt_tokens > 0) c.prompt_tokens = event.prompt_tokens;
  const bool want_lp = req_.sampling.logprobs >= 0;
  std::string out_text;
  json chunk_lp = req_.chat ? json::array() : json::object();
  if (!req_.chat && want_lp)
    chunk_lp = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
                {"text_offset", json::array()}};
  auto token_str = [&](int32_t id) {
    return req_.return_tokens_as_token_ids ? "token_id:" + std::to_string(id) : ctx_->tokenizer->token_bytes(id);
  };
  bool stopped = false;
  for (const SampledToken& t : event.tokens) {
    ++c.completion_tokens;
    const std::string piece = c.stop->push(c.detok->push(t.id));
    if (want_lp) {
      const std::string s = token_str(t.id);
      if (req_.chat) {
        json item;
        item["token"] = s;
        item["logprob"] = finite_logprob(t.logprob);
        item["bytes"] = byte_values(ctx_->tokenizer->token_bytes(t.id));
        json top = json::array();
        for (const auto& [id, lp] : t.top) {
          top.push_back({{"token", token_str(id)}, {"logprob", finite_logprob(lp)},
                         {"bytes", byte_values(ctx_->tokenizer->token_bytes(id))}});
        }
        item["top_logprobs"] = top;
        chunk_lp.push_back(item);
        c.logprobs_items.push_back(item);
      } else {
        json top = json::object();
        for (const auto& [id, lp] : t.top) top[token_str(id)] = finite_logprob(lp);
        const size_t offset = c.text.size() + out_text.size();
        chunk_lp["tokens"].push_back(s);
        chunk_lp["token_logprobs"].push_back(finite_logprob(t.logprob));
        chunk_lp["top_logprobs"].push_back(top);
        chunk_lp["text_offset"].push_back(offset);
        c.cmpl_tokens.push_back(s);
        c.cmpl_token_logprobs.push_back(finite_logprob(t.logprob));
        c.cmpl_top.push_back(top);
        c.cmpl_offsets.push_back(offset);
      }
    }
    out_text += piece;
    if (c.stop->stopped()) {
      stopped = true;
      ctx_->engine->cancel(c.engine_id);  // stop at the next step; its KV blocks are freed then
      break;
    }
  }
  const char* finish = nullptr;
  if (stopped) {
    finish = finish_reason_name(FinishReason::kStop);
  } else if (event.finished) {
    switch (event.finish_reason) {
      case FinishReason::kStop:
      case FinishReason::kLength: finish = finish_reason_name(event.finish_reason); break;
      case FinishReason::kError: {
        ApiError e = error_from_status(event.error.ok() ? Internal("generation failed") : event.error);
        if (e.http_status < 500) e.http_status = 500, e.type = "server_error";
        fail(e);
        return;
      }
      default: {  // cancelled by the engine (shutdown, timeout), not by us
        ApiError e;
        e.http_status = 503;
        e.type = "server_error";
        e.code = "cancelled";
        e.message = "the request was cancelled by the server (shutting down or timed out)";
        fail(e);
        return;
      }
    }
    out_text += c.stop->push(c.detok->flush());
    out_text += c.stop->flush();  // "" when the flushed tail completed a stop string
  }
  c.text += out_text;
  if (req_.stream) {
    const bool has_lp = want_lp && (req_.chat ? !chunk_lp.empty() : !chunk_lp["tokens"].empty());
    if (!out_text.empty() || has_lp)
      writer_->write("data: " + chunk_json(index, out_text, has_lp ? dump(req_.chat ? json{{"content", chunk_lp}} : chunk_lp) : "",
                                           nullptr, false) + "\n\n");
  }
  if (finish) finish_choice(c, finish);
}

void Generation::finish_choice(Choice& c, const char* reason) {
  c.finished = true;
  c.finish_reason = reason;
  if (req_.stream) writer_->write("data: " + chunk_json(c.index, "", "", reason, false) + "\n\n");
  maybe_complete();
}

void Generation::fail(const ApiError& e) {
  done_ = true;
  cancel();
  if (req_.stream) {
    writer_->write("data: " + error_json(e) + "\n\n");
    writer_->write("data: [DONE]\n\n");
    writer_->end();
  } else {
    writer_->send(error_response(e));
  }
}

void Generation::maybe_complete() {
  for (auto& c : choices_)
    if (!c->finished) return;
  done_ = true;
  int32_t completion = 0;
  for (auto& c : choices_) completion += c->completion_tokens;
  const int32_t prompt = choices_.empty() ? 0 : choices_[0]->prompt_tokens;
  json usage = {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
  if (req_.stream) {
    if (req_.include_usage) {
      json j = {{"id", id_}, {"object", req_.chat ? "chat.completion.chunk" : "text_completion"}, {"created", created_s_},
                {"model", ctx_->served_model_name}, {"choices", json::array()}, {"usage", usage}};
      writer_->write("data: " + dump(j) + "\n\n");
    }
    writer_->write("data: [DONE]\n\n");
    writer_->end();
    return;
  }
  json choices = json::array();
  std::string echo;
  if (!req_.chat && req_.echo) echo = req_.prompt_text ? *req_.prompt_text : ctx_->tokenizer->decode(prompt_ids_, false);
  for (auto& c : choices_) {
    json ch;
    ch["index"] = c->index;
    const bool want_lp = req_.sampling.logprobs >= 0;
    if (req_.chat) {
      ch["message"] = {{"role", "assistant"}, {"content", c->text}};
      ch["logprobs"] = want_lp ? json{{"content", c->logprobs_items}} : json(nullptr);
    } else {
      ch["text"] = echo + c->text;
      ch["logprobs"] = want_lp ? json{{"tokens", c->cmpl_tokens}, {"token_logprobs", c->cmpl_token_logprobs},
                                      {"top_logprobs", c->cmpl_top}, {"text_offset", c->cmpl_offsets}}
                               : json(nullptr);
    }
    ch["finish_reason"] = c->finish_reason;
    choices.push_back(ch);
  }
  json j = {{"id", id_}, {"object", req_.chat ? "chat.completion" : "text_completion"}, {"created", created_s_},
            {"model", ctx_->served_model_name}, {"choices", choices}, {"usage", usage}};
  HttpResponse r;
  r.body = dump(j) + "\n";
  writer_->send(std::move(r));
}

}  // namespace kr
