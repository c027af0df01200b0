#include "server/generation.h"

#include <chrono>
#include <random>

#include "engine/engine.h"
#include "server/logprobs_writer.h"
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

}  // namespace

struct Generation::Choice {
  int index = 0;
  RequestId engine_id = 0;
  std::unique_ptr<IncrementalDetokenizer> detok;
  std::unique_ptr<StopMatcher> stop;
  std::unique_ptr<LogprobsWriter> logprobs;  // null unless logprobs were asked for
  std::string text;                          // everything emitted so far
  int32_t completion_tokens = 0;
  int32_t prompt_tokens = 0;
  bool finished = false;
  FinishReason finish_reason = FinishReason::kNone;
};

Generation::Generation(ServerContext* ctx, std::shared_ptr<ModelLease> model, OpenAIRequest req,
                       std::vector<int32_t> prompt_ids, std::shared_ptr<ResponseWriter> writer)
    : ctx_(ctx), model_(std::move(model)), req_(std::move(req)), prompt_ids_(std::move(prompt_ids)),
      writer_(std::move(writer)) {
  id_ = random_id(req_.chat ? "chatcmpl-" : "cmpl-");
  created_s_ = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const Tokenizer* tok = model_->prompt().tokenizer;
  for (int i = 0; i < req_.n; ++i) {
    auto c = std::make_unique<Choice>();
    c->index = i;
    c->detok = std::make_unique<IncrementalDetokenizer>(tok, req_.skip_special_tokens);
    c->stop = std::make_unique<StopMatcher>(req_.stop);
    if (req_.sampling.logprobs >= 0)
      c->logprobs = std::make_unique<LogprobsWriter>(req_.chat, tok, req_.return_tokens_as_token_ids);
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
    g.arrival_ns = model_->arrival_ns();  // a wait for the model's load is queue time
    const int index = c->index;
    g.on_event = [self, index](TokenEvent&& e) { self->on_event(index, std::move(e)); };
    Status s = model_->engine().submit(std::move(g));
    if (!s.ok()) {
      for (auto& d : choices_) {
        if (d.get() == c.get()) break;
        d->finished = true;
        model_->engine().cancel(d->engine_id);
      }
      c->finished = true;
      done_ = true;
      writer_->send(error_response(error_from_status(s)));
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
      for (auto& c : choices_) write_chunk(chunk(c->index, "", nullptr, nullptr, /*role=*/true));
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
  for (auto& c : choices_) model_->engine().cancel(c->engine_id);
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
  std::vector<std::pair<int, TokenEvent>> batch;
  while (true) {
    batch.clear();
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

json Generation::chunk(int choice, const std::string& text, json logprobs, const char* finish_reason, bool role) const {
  json ch;
  ch["index"] = choice;
  if (req_.chat) {
    json delta = json::object();
    if (role) delta["role"] = "assistant";
    if (role || !text.empty()) delta["content"] = text;
    ch["delta"] = std::move(delta);
  } else {
    ch["text"] = text;
  }
  ch["logprobs"] = std::move(logprobs);
  ch["finish_reason"] = finish_reason ? json(finish_reason) : json(nullptr);
  json j = {{"id", id_}, {"object", req_.chat ? "chat.completion.chunk" : "text_completion"}, {"created", created_s_},
            {"model", model_->name()}, {"choices", json::array({std::move(ch)})}};
  if (req_.include_usage) j["usage"] = nullptr;
  return j;
}

void Generation::write_chunk(const json& j) { writer_->write("data: " + dump(j) + "\n\n"); }

// Step 1: the event's tokens through the detokenizer and the stop strings. A
// matched stop string ends the choice here (its engine request is cancelled at
// the next step); a finishing event flushes what was held back.
Generation::TextStep Generation::take_text(Choice& c, const TokenEvent& event) {
  TextStep step;
  for (const SampledToken& t : event.tokens) {
    ++c.completion_tokens;
    ++step.tokens;
    const std::string piece = c.stop->push(c.detok->push(t.id));
    if (c.logprobs) c.logprobs->add(t, c.text.size() + step.text.size());  // offset: before this token's text
    step.text += piece;
    if (c.stop->stopped()) {
      step.stopped = true;
      model_->engine().cancel(c.engine_id);  // stop at the next step; its KV blocks are freed then
      return step;
    }
  }
  if (event.finished) {
    step.text += c.stop->push(c.detok->flush());
    step.text += c.stop->flush();  // "" when the flushed tail completed a stop string
  }
  return step;
}

void Generation::process(int index, TokenEvent& event) {
  if (done_) return;
  Choice& c = *choices_[index];
  if (c.finished) return;
  if (event.prompt_tokens > 0) c.prompt_tokens = event.prompt_tokens;
  // 1. text and stop strings (2. the logprobs writer takes each token there, with its text offset)
  const TextStep step = take_text(c, event);
  // 3. finish: a stop string, the engine's stop/length, or an error
  FinishReason finish = FinishReason::kNone;
  if (step.stopped) {
    finish = FinishReason::kStop;
  } else if (event.finished) {
    if (event.finish_reason == FinishReason::kError) {
      ApiError e = error_from_status(event.error.ok() ? Internal("generation failed") : event.error);
      if (e.http_status < 500) e.http_status = 500, e.type = "server_error";
      return fail(e);
    }
    if (event.finish_reason != FinishReason::kStop && event.finish_reason != FinishReason::kLength) {
      ApiError e;  // cancelled by the engine (shutdown, timeout), not by us
      e.http_status = 503;
      e.type = "server_error";
      e.code = "cancelled";
      e.message = "the request was cancelled by the server (shutting down or timed out)";
      return fail(e);
    }
    finish = event.finish_reason;
  }
  c.text += step.text;
  if (req_.stream) {
    const bool has_logprobs = c.logprobs && !c.logprobs->empty();
    if (!step.text.empty() || has_logprobs)
      write_chunk(chunk(index, step.text, has_logprobs ? c.logprobs->take() : json(nullptr), nullptr, false));
  }
  if (finish != FinishReason::kNone) finish_choice(c, finish);
}

void Generation::finish_choice(Choice& c, FinishReason reason) {
  c.finished = true;
  c.finish_reason = reason;
  if (req_.stream) write_chunk(chunk(c.index, "", nullptr, finish_reason_name(reason), false));
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
      write_chunk({{"id", id_}, {"object", req_.chat ? "chat.completion.chunk" : "text_completion"},
                   {"created", created_s_}, {"model", model_->name()}, {"choices", json::array()},
                   {"usage", usage}});
    }
    writer_->write("data: [DONE]\n\n");
    writer_->end();
    return;
  }
  json choices = json::array();
  std::string echo;
  if (!req_.chat && req_.echo)
    echo = req_.prompt_text ? *req_.prompt_text : model_->prompt().tokenizer->decode(prompt_ids_, false);
  for (auto& c : choices_) {
    json ch;
    ch["index"] = c->index;
    if (req_.chat) {
      ch["message"] = {{"role", "assistant"}, {"content", c->text}};
    } else {
      ch["text"] = echo + c->text;
    }
    ch["logprobs"] = c->logprobs ? c->logprobs->take() : json(nullptr);
    ch["finish_reason"] = finish_reason_name(c->finish_reason);
    choices.push_back(std::move(ch));
  }
  json j = {{"id", id_}, {"object", req_.chat ? "chat.completion" : "text_completion"}, {"created", created_s_},
            {"model", model_->name()}, {"choices", std::move(choices)}, {"usage", std::move(usage)}};
  HttpResponse r;
  r.body = dump(j) + "\n";
  writer_->send(std::move(r));
}

}  // namespace kr
