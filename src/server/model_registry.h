// ModelRegistry: the models one server serves, by served name, and their life:
//
//   unloaded --(a request, or the start)--> loading --> loaded --(idle TTL, or room for another)--> unloaded
//                                             `--> failed (the reason is kept; the next request tries again)
//
// Each loaded model is its own LoadedModel: tokenizer, backend, weights, KV
// pool and engine thread. Nothing is shared between models but the HTTP
// threads and the event pool, whose work per request is short, so one model's
// queue or failure never holds up another.
//
// Loading follows Ollama and llama-swap: a request for a model that is not
// loaded waits (its time counts as queue time) while the loader thread loads
// it, first unloading the least recently used idle model when
// max_loaded_models are loaded, or when the device has too little free memory
// for the model's share. A model that is busy is never unloaded: it is marked,
// its new requests wait too, and it is unloaded once its running requests
// finish. Idle models are unloaded after their TTL. Loads run one at a time.
//
// Threading: acquire(), status(), render_metrics() and the accessors: any
// thread. load_at_start() and stop(): the owner (main) thread. The loader runs
// on the registry's loader thread and never on a caller's; continuations of
// requests that waited for a load run on the registry's resume pool.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "metrics/metrics.h"
#include "server/models_config.h"
#include "server/prompt.h"

namespace kr {

class Engine;
class ModelRunner;
class Tokenizer;
class ChatPromptBuilder;

enum class ModelState { kUnloaded, kLoading, kLoaded, kUnloading, kFailed };
const char* model_state_name(ModelState state);  // "unloaded", "loading", ...

// What serving a model takes; made by a ModelLoader on the loader thread.
struct LoadedModel {
  LoadedModel();
  ~LoadedModel();  // the engine (stopped) first, then the runner, then the tokenizer
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<ChatPromptBuilder> chat;  // null: no chat template
  std::unique_ptr<ModelRunner> runner;
  std::unique_ptr<Engine> engine;           // started
  PromptContext prompt;                     // points into tokenizer and chat
  std::string summary;                      // for the log ("max_model_len 2048, 512 KV blocks")
};

// Loads `spec` with its share of the memory; the engine records into `metrics`.
using ModelLoader =
    std::function<StatusOr<std::unique_ptr<LoadedModel>>(const ModelSpec& spec, double memory_share, Metrics* metrics)>;

// A request's hold on a loaded model: while any lease is held the model is busy
// and is not unloaded. Release it by dropping the last shared_ptr.
class ModelLease {
 public:
  ~ModelLease();
  ModelLease(const ModelLease&) = delete;
  ModelLease& operator=(const ModelLease&) = delete;

  const std::string& name() const { return name_; }
  Engine& engine() const;
  const PromptContext& prompt() const { return model_->prompt; }
  // When the request was routed, on the registry's clock (so that a wait for a
  // load counts as queue time).
  int64_t arrival_ns() const { return arrival_ns_; }

 private:
  friend class ModelRegistry;
  struct Shared;
  ModelLease(std::shared_ptr<Shared> shared, size_t slot, std::shared_ptr<LoadedModel> model, std::string name,
             int64_t arrival_ns);
  std::shared_ptr<Shared> shared_;
  size_t slot_;
  std::shared_ptr<LoadedModel> model_;
  std::string name_;
  int64_t arrival_ns_;
};

struct ModelEvent {
  enum Kind { kLoaded, kLoadFailed, kUnloaded };
  Kind kind = kLoaded;
  int64_t unix_ms = 0;
  double seconds = 0;  // the load or unload took
  std::string detail;  // unload: "idle" or "evicted"; failure: the reason
};
const char* model_event_name(ModelEvent::Kind kind);  // "loaded", "load_failed", "unloaded"

// One model as /v1/models shows it.
struct ModelStatus {
  std::string name;
  ModelState state = ModelState::kUnloaded;
  bool is_default = false;
  double memory_share = 0;
  std::string error;          // kFailed: why the last load failed
  int32_t max_model_len = 0;  // 0 unless loaded
  int32_t running = 0, waiting = 0, free_kv_blocks = 0;  // engine counters when loaded
  int32_t in_flight = 0;      // requests holding it
  int32_t waiting_for_load = 0;
  double last_load_s = 0;
  uint64_t loads = 0, load_failures = 0, unloads = 0;
  int64_t last_used_unix_ms = 0;  // 0: never
  std::vector<ModelEvent> events;  // the most recent few, oldest first
};

struct ModelRegistryOptions {
  int32_t max_loaded_models = 0;  // 0: no limit
  double idle_ttl_s = 0;          // 0: idle models stay loaded (a model's own idle_ttl_s wins)
  int32_t resume_threads = 2;
  // Per model (same order as the specs): device bytes its share stands for, and
  // the device's free bytes now. When both are given, a load for which too
  // little is free unloads idle models first. Left empty on the CPU.
  std::vector<int64_t> memory_bytes;
  std::function<int64_t()> device_free_bytes;
  MetricsOptions metrics;  // model_name is set per model
};

class ModelRegistry {
 public:
  // `models` passed check_models(); `shares` are resolve_memory_shares()'s.
  ModelRegistry(std::vector<ModelSpec> models, std::vector<double> shares, ModelRegistryOptions options,
                ModelLoader loader, const Clock* clock);
  ~ModelRegistry();  // stop(0)

  // Loads the models marked load_at_start, in order, up to max_loaded_models, and
  // waits for them. Returns the first failure ("model 'x': reason").
  Status load_at_start();

  // Routes a request to the model named `name` ("": the default, the first one).
  // `then` gets a lease, or: NotFound (no such model; the message lists the served
  // names), Cancelled (shutting down), ResourceExhausted (too many requests waiting
  // for this model's load), or the load's error. It runs right here when the model
  // is loaded, else on the resume pool once the load is done.
  using Then = std::function<void(StatusOr<std::shared_ptr<ModelLease>>)>;
  void acquire(const std::string& name, Then then);

  // No new requests; waiting ones get Cancelled; the loader stops; every engine
  // drains for up to drain_timeout_s (all at once), then the resume pool ends.
  void stop(double drain_timeout_s);

  std::vector<ModelStatus> status() const;
  std::vector<std::string> names() const;
  const std::string& default_name() const;
  Metrics* default_metrics() const;  // /stats
  // Every model's series in one exposition (model_name label), plus krserve_startup_seconds.
  std::string render_metrics() const;
  void set_startup_seconds(double seconds);

 private:
  void loader_loop();
  bool make_room(size_t index, std::unique_lock<std::mutex>& lock, std::string* no_room);
  void process_load(size_t index, std::unique_lock<std::mutex>& lock, const std::string& no_room);
  void unload(size_t index, bool evicted, const std::string& why, std::unique_lock<std::mutex>& lock);
  bool expire_idle(std::unique_lock<std::mutex>& lock, int64_t* next_deadline_ns);
  double ttl_s(size_t index) const;
  void push_event(size_t index, ModelEvent e);

  std::shared_ptr<ModelLease::Shared> shared_;
  ModelRegistryOptions options_;
  ModelLoader loader_;
  const Clock* clock_;
  std::string default_name_;
  struct Threads;
  std::unique_ptr<Threads> threads_;
};

}  // namespace kr
