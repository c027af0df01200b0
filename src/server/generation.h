// Generation: one /v1/chat/completions or /v1/completions request in flight:
// n engine requests (one per choice), their events turned into OpenAI JSON:
// SSE chunks as they come, or one response at the end. Each event of a choice
// goes through three steps (process()):
//   1. text: incremental detokenization and stop strings (held back until
//      decided; a match cancels the engine request) -> the text to emit;
//   2. logprobs: LogprobsWriter, in the chat or the completions form;
//   3. finish: the finish reason (or the error) ends the choice, and the last
//      choice to finish completes the response (usage, [DONE]).
//
// Threading: start() on an HTTP worker. Engine events arrive on the engine
// thread and are only queued there; one task at a time on the event pool
// drains the queue (so a Generation is processed by one thread at a time).
// cancel() from any thread (the loop thread on disconnect).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/request.h"
#include "server/http_server.h"
#include "server/model_registry.h"
#include "server/openai_request.h"
#include "server/server_context.h"

namespace kr {

class Generation : public std::enable_shared_from_this<Generation> {
 public:
  // req.max_tokens is set (admit_prompt settled it). `model` is the model the
  // request was routed to, held until the Generation ends.
  Generation(ServerContext* ctx, std::shared_ptr<ModelLease> model, OpenAIRequest req,
             std::vector<int32_t> prompt_ids, std::shared_ptr<ResponseWriter> writer);
  ~Generation();

  // Submits the choices; on a submit error answers with it (nothing stays in flight).
  void start();
  // Stops every choice at the next engine step boundary (client gone).
  void cancel();

 private:
  struct Choice;
  struct TextStep {
    std::string text;      // safe to emit
    size_t tokens = 0;     // tokens of the event consumed (all, unless a stop string ended it)
    bool stopped = false;  // a stop string matched
  };

  void on_event(int choice, TokenEvent&& event);  // engine thread
  void drain();                                   // event pool
  void release_events();                          // end of start()
  void process(int choice, TokenEvent& event);
  TextStep take_text(Choice& c, const TokenEvent& event);
  void finish_choice(Choice& c, FinishReason reason);
  void fail(const ApiError& e);
  void maybe_complete();
  nlohmann::json chunk(int choice, const std::string& text, nlohmann::json logprobs, const char* finish_reason,
                       bool role) const;
  void write_chunk(const nlohmann::json& j);

  ServerContext* ctx_;
  std::shared_ptr<ModelLease> model_;  // released last (after the choices)
  OpenAIRequest req_;
  std::vector<int32_t> prompt_ids_;
  std::shared_ptr<ResponseWriter> writer_;
  std::string id_;        // chatcmpl-... / cmpl-...
  int64_t created_s_ = 0;
  std::vector<std::unique_ptr<Choice>> choices_;
  std::atomic<bool> done_{false};  // the response is complete (or failed)

  std::mutex mu_;  // guards queue_, scheduled_ and started_
  std::vector<std::pair<int, TokenEvent>> queue_;
  bool scheduled_ = false;  // a drain task is queued or running
  bool started_ = false;    // start() finished: events may be turned into output
};

}  // namespace kr
