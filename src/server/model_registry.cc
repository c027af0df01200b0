#include "server/model_registry.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>

#include "base/check.h"
#include "base/log.h"
#include "engine/engine.h"
#include "engine/model_runner.h"
#include "metrics/exposition.h"
#include "server/task_pool.h"
#include "tokenizer/chat_prompt.h"
#include "tokenizer/tokenizer.h"

namespace kr {
namespace {

constexpr size_t kMaxEvents = 8;  // per model, in /v1/models

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Waiter {
  int64_t arrival_ns = 0;
  ModelRegistry::Then then;
};

// One served model. Guarded by Shared::mu except `spec`, `share`, `memory_bytes`
// and `metrics`, which are fixed.
struct SlotState {
  ModelSpec spec;
  double share = 0;
  int64_t memory_bytes = 0;
  std::unique_ptr<Metrics> metrics;

  ModelState state = ModelState::kUnloaded;
  std::shared_ptr<LoadedModel> loaded;
  int32_t in_flight = 0;
  int64_t last_used_ns = 0;
  int64_t last_used_unix_ms = 0;
  bool evicting = false;  // to be unloaded for another model once idle: new requests wait
  bool queued = false;    // in the load queue
  std::vector<Waiter> waiters;
  std::string error;
  uint64_t loads = 0, load_failures = 0, unloads = 0;
  double last_load_s = 0;
  std::deque<ModelEvent> events;
};

}  // namespace

struct ModelLease::Shared {
  std::mutex mu;
  std::condition_variable cv;  // loader: work, an idle model, stop; load_at_start: a load done
  std::vector<std::unique_ptr<SlotState>> slots;
  std::deque<size_t> load_queue;
  const Clock* clock = nullptr;
  bool stopping = false;
  double startup_s = -1;
};

struct ModelRegistry::Threads {
  std::thread loader;
  std::unique_ptr<TaskPool> resume;
};

const char* model_state_name(ModelState state) {
  switch (state) {
    case ModelState::kUnloaded: return "unloaded";
    case ModelState::kLoading: return "loading";
    case ModelState::kLoaded: return "loaded";
    case ModelState::kUnloading: return "unloading";
    case ModelState::kFailed: return "failed";
  }
  return "unknown";
}

const char* model_event_name(ModelEvent::Kind kind) {
  switch (kind) {
    case ModelEvent::kLoaded: return "loaded";
    case ModelEvent::kLoadFailed: return "load_failed";
    case ModelEvent::kUnloaded: return "unloaded";
  }
  return "unknown";
}

LoadedModel::LoadedModel() = default;

LoadedModel::~LoadedModel() {
  engine.reset();  // joins the engine thread before the runner and tokenizer go
  runner.reset();
  chat.reset();
  tokenizer.reset();
}

// ---- ModelLease ----

ModelLease::ModelLease(std::shared_ptr<Shared> shared, size_t slot, std::shared_ptr<LoadedModel> model,
                       std::string name, int64_t arrival_ns)
    : shared_(std::move(shared)), slot_(slot), model_(std::move(model)), name_(std::move(name)),
      arrival_ns_(arrival_ns) {}

ModelLease::~ModelLease() {
  // Drop the model first: once in_flight is 0 the loader may unload it, and the
  // last reference must then be the loader's, never this thread's (which may be
  // the model's own engine thread).
  model_.reset();
  std::lock_guard<std::mutex> lock(shared_->mu);
  SlotState& s = *shared_->slots[slot_];
  s.last_used_ns = shared_->clock->now_ns();
  s.last_used_unix_ms = unix_ms_now();
  if (--s.in_flight == 0) shared_->cv.notify_all();
}

Engine& ModelLease::engine() const { return *model_->engine; }

// ---- ModelRegistry ----

ModelRegistry::ModelRegistry(std::vector<ModelSpec> models, std::vector<double> shares, ModelRegistryOptions options,
                             ModelLoader loader, const Clock* clock)
    : shared_(std::make_shared<ModelLease::Shared>()),
      options_(std::move(options)),
      loader_(std::move(loader)),
      clock_(clock),
      threads_(std::make_unique<Threads>()) {
  KR_CHECK(!models.empty() && shares.size() == models.size());
  shared_->clock = clock;
  default_name_ = models[0].name;
  for (size_t i = 0; i < models.size(); ++i) {
    auto s = std::make_unique<SlotState>();
    s->spec = std::move(models[i]);
    s->share = shares[i];
    s->memory_bytes = i < options_.memory_bytes.size() ? options_.memory_bytes[i] : 0;
    MetricsOptions mo = options_.metrics;
    mo.model_name = s->spec.name;
    s->metrics = std::make_unique<Metrics>(clock, mo);
    shared_->slots.push_back(std::move(s));
  }
  threads_->resume = std::make_unique<TaskPool>(options_.resume_threads);
  threads_->loader = std::thread([this] { loader_loop(); });
}

ModelRegistry::~ModelRegistry() {
  stop(0);
  // Models go here, on the owner thread, after every engine stopped (outside the
  // lock: what they release may release a lease).
  std::vector<std::shared_ptr<LoadedModel>> models;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    for (auto& s : shared_->slots) models.push_back(std::move(s->loaded));
  }
  models.clear();
}

Status ModelRegistry::load_at_start() {
  std::vector<size_t> start;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    for (size_t i = 0; i < shared_->slots.size(); ++i) {
      if (options_.max_loaded_models > 0 && static_cast<int32_t>(start.size()) >= options_.max_loaded_models) break;
      SlotState& s = *shared_->slots[i];
      if (!s.spec.load_at_start || s.queued) continue;
      s.queued = true;
      shared_->load_queue.push_back(i);
      start.push_back(i);
    }
  }
  shared_->cv.notify_all();
  std::unique_lock<std::mutex> lock(shared_->mu);
  shared_->cv.wait(lock, [&] {
    if (shared_->stopping) return true;
    for (size_t i : start)
      if (shared_->slots[i]->queued || shared_->slots[i]->state == ModelState::kLoading) return false;
    return true;
  });
  for (size_t i : start) {
    const SlotState& s = *shared_->slots[i];
    if (s.state == ModelState::kFailed) return FailedPrecondition("model '" + s.spec.name + "': " + s.error);
  }
  if (shared_->stopping) return Cancelled("stopped while loading");
  return Status::Ok();
}

void ModelRegistry::acquire(const std::string& name, Then then) {
  std::unique_lock<std::mutex> lock(shared_->mu);
  if (shared_->stopping) {
    lock.unlock();
    return then(Cancelled("the server is shutting down"));
  }
  size_t index = shared_->slots.size();
  for (size_t i = 0; i < shared_->slots.size(); ++i) {
    if (name.empty() ? i == 0 : shared_->slots[i]->spec.name == name) {
      index = i;
      break;
    }
  }
  if (index == shared_->slots.size()) {
    std::string list;
    for (const auto& s : shared_->slots) list += (list.empty() ? "'" : ", '") + s->spec.name + "'";
    lock.unlock();
    return then(NotFound("the model '" + name + "' does not exist; this server serves " + list));
  }
  SlotState& s = *shared_->slots[index];
  const int64_t now = clock_->now_ns();
  s.last_used_ns = now;
  s.last_used_unix_ms = unix_ms_now();
  if (s.state == ModelState::kLoaded && !s.evicting) {
    ++s.in_flight;
    std::shared_ptr<ModelLease> lease(new ModelLease(shared_, index, s.loaded, s.spec.name, now));
    lock.unlock();
    return then(std::move(lease));
  }
  // Wait for a load: bounded like the engine's own queue.
  if (static_cast<int32_t>(s.waiters.size()) >= s.spec.engine.max_queued_requests) {
    lock.unlock();
    return then(ResourceExhausted("too many requests (" + std::to_string(s.spec.engine.max_queued_requests) +
                                  ") are waiting for the model '" + s.spec.name + "' to load; retry later"));
  }
  s.waiters.push_back(Waiter{now, std::move(then)});
  if (!s.queued && s.state != ModelState::kLoading) {
    s.queued = true;
    shared_->load_queue.push_back(index);
  }
  lock.unlock();
  shared_->cv.notify_all();
}

double ModelRegistry::ttl_s(size_t index) const {
  const SlotState& s = *shared_->slots[index];
  return s.spec.idle_ttl_s >= 0 ? s.spec.idle_ttl_s : options_.idle_ttl_s;
}

void ModelRegistry::push_event(size_t index, ModelEvent e) {
  SlotState& s = *shared_->slots[index];
  e.unix_ms = unix_ms_now();
  s.events.push_back(std::move(e));
  while (s.events.size() > kMaxEvents) s.events.pop_front();
}

void ModelRegistry::loader_loop() {
  std::unique_lock<std::mutex> lock(shared_->mu);
  while (!shared_->stopping) {
    if (!shared_->load_queue.empty()) {
      const size_t index = shared_->load_queue.front();
      std::string no_room;
      if (!make_room(index, lock, &no_room)) {
        // A model must go first but is busy: wait for a request to finish (or for stop).
        shared_->cv.wait(lock);
        continue;
      }
      shared_->load_queue.pop_front();
      process_load(index, lock, no_room);
      continue;
    }
    int64_t next_deadline_ns = std::numeric_limits<int64_t>::max();
    if (expire_idle(lock, &next_deadline_ns)) continue;
    if (next_deadline_ns == std::numeric_limits<int64_t>::max()) {
      shared_->cv.wait(lock);
    } else {
      const int64_t wait_ns = std::max<int64_t>(next_deadline_ns - clock_->now_ns(), 1000000);
      shared_->cv.wait_for(lock, std::chrono::nanoseconds(wait_ns));
    }
  }
}

// True when `index` may be loaded now. Unloads the least recently used idle
// model when max_loaded_models are loaded or the device lacks the memory;
// false (after marking the least recently used busy model) when only busy
// models could make room. Sets *no_room when nothing can make enough room.
bool ModelRegistry::make_room(size_t index, std::unique_lock<std::mutex>& lock, std::string* no_room) {
  auto& slots = shared_->slots;
  if (slots[index]->state == ModelState::kLoaded) return true;  // process_load releases the waiters
  while (true) {
    int32_t loaded = 0;
    for (const auto& s : slots) loaded += s->state == ModelState::kLoaded ? 1 : 0;
    const bool over_count = options_.max_loaded_models > 0 && loaded >= options_.max_loaded_models;
    const int64_t need = slots[index]->memory_bytes;
    int64_t free_bytes = -1;
    bool short_memory = false;
    if (!over_count && need > 0 && options_.device_free_bytes) {
      lock.unlock();
      free_bytes = options_.device_free_bytes();
      lock.lock();
      short_memory = free_bytes >= 0 && free_bytes < need;
    }
    if (!over_count && !short_memory) {
      for (const auto& s : slots) s->evicting = false;
      return true;
    }
    // The least recently used loaded model; an idle one goes at once.
    size_t idle = slots.size(), busy = slots.size();
    for (size_t i = 0; i < slots.size(); ++i) {
      const SlotState& s = *slots[i];
      if (i == index || s.state != ModelState::kLoaded) continue;
      size_t& pick = s.in_flight == 0 ? idle : busy;
      if (pick == slots.size() || s.last_used_ns < slots[pick]->last_used_ns) pick = i;
    }
    const std::string why = over_count ? "--max-loaded-models " + std::to_string(options_.max_loaded_models) +
                                             " are loaded and '" + slots[index]->spec.name + "' was asked for"
                                       : "'" + slots[index]->spec.name + "' needs " +
                                             std::to_string(need >> 20) + " MiB of device memory and " +
                                             std::to_string(free_bytes >> 20) + " MiB are free";
    if (idle != slots.size()) {
      unload(idle, /*evicted=*/true, why, lock);
      continue;
    }
    if (busy != slots.size()) {
      if (!slots[busy]->evicting)
        KR_LOG(kInfo, "model '%s' will be unloaded once its running requests finish: %s",
               slots[busy]->spec.name.c_str(), why.c_str());
      slots[busy]->evicting = true;
      return false;
    }
    // Nothing left to unload.
    if (short_memory) *no_room = "not enough free device memory: " + why;
    return true;
  }
}

void ModelRegistry::process_load(size_t index, std::unique_lock<std::mutex>& lock, const std::string& no_room) {
  SlotState& s = *shared_->slots[index];
  s.queued = false;
  if (s.state != ModelState::kLoaded) {
    s.state = ModelState::kLoading;
    const ModelSpec spec = s.spec;
    const double share = s.share;
    Metrics* metrics = s.metrics.get();
    lock.unlock();
    KR_LOG(kInfo, "model '%s': loading from %s (memory share %.3f)", spec.name.c_str(),
           spec.path.empty() ? spec.arch.c_str() : spec.path.c_str(), share);
    const int64_t t0 = clock_->now_ns();
    StatusOr<std::unique_ptr<LoadedModel>> made =
        no_room.empty() ? loader_(spec, share, metrics) : StatusOr<std::unique_ptr<LoadedModel>>(ResourceExhausted(no_room));
    const double seconds = static_cast<double>(clock_->now_ns() - t0) * 1e-9;
    std::shared_ptr<LoadedModel> model;
    Status error;
    if (made.ok()) {
      model = std::move(made).value();
    } else {
      error = made.status();
    }
    lock.lock();
    if (model) {
      s.state = ModelState::kLoaded;
      s.loaded = std::move(model);
      s.error.clear();
      ++s.loads;
      s.last_load_s = seconds;
      s.last_used_ns = clock_->now_ns();  // a fresh model is not the first to go
      metrics->record_model_load(seconds);
      metrics->set_model_loaded(true);
      push_event(index, ModelEvent{ModelEvent::kLoaded, 0, seconds, ""});
      KR_LOG(kInfo, "model '%s': loaded in %.2f s (%s)", spec.name.c_str(), seconds, s.loaded->summary.c_str());
    } else {
      s.state = ModelState::kFailed;
      s.error = error.message();
      ++s.load_failures;
      metrics->record_model_load_failure();
      push_event(index, ModelEvent{ModelEvent::kLoadFailed, 0, seconds, s.error});
      KR_LOG(kError, "model '%s': failed to load after %.2f s: %s", spec.name.c_str(), seconds, s.error.c_str());
    }
  }
  std::vector<Waiter> waiters;
  waiters.swap(s.waiters);
  s.evicting = false;
  for (Waiter& w : waiters) {
    if (s.state == ModelState::kLoaded) {
      ++s.in_flight;
      auto lease = std::shared_ptr<ModelLease>(new ModelLease(shared_, index, s.loaded, s.spec.name, w.arrival_ns));
      threads_->resume->post([then = std::move(w.then), lease = std::move(lease)]() mutable { then(std::move(lease)); });
    } else {
      Status e = FailedPrecondition("the model '" + s.spec.name + "' failed to load: " + s.error);
      threads_->resume->post([then = std::move(w.then), e = std::move(e)]() mutable { then(std::move(e)); });
    }
  }
  shared_->cv.notify_all();  // load_at_start waits for this
}

void ModelRegistry::unload(size_t index, bool evicted, const std::string& why, std::unique_lock<std::mutex>& lock) {
  SlotState& s = *shared_->slots[index];
  s.state = ModelState::kUnloading;
  std::shared_ptr<LoadedModel> model = std::move(s.loaded);
  const std::string name = s.spec.name;
  lock.unlock();
  const int64_t t0 = clock_->now_ns();
  model->engine->stop(0);  // idle: nothing to drain
  model.reset();           // frees its weights and KV pool here, on the loader thread
  const double seconds = static_cast<double>(clock_->now_ns() - t0) * 1e-9;
  lock.lock();
  s.state = ModelState::kUnloaded;
  s.evicting = false;
  ++s.unloads;
  s.metrics->record_model_unload(evicted);
  s.metrics->set_model_loaded(false);
  push_event(index, ModelEvent{ModelEvent::kUnloaded, 0, seconds, evicted ? "evicted" : "idle"});
  KR_LOG(kInfo, "model '%s': unloaded in %.2f s (%s)", name.c_str(), seconds, why.c_str());
  // Requests that arrived while it was marked wait for a load of their own.
  if (!s.waiters.empty() && !s.queued) {
    s.queued = true;
    shared_->load_queue.push_back(index);
  }
}

bool ModelRegistry::expire_idle(std::unique_lock<std::mutex>& lock, int64_t* next_deadline_ns) {
  const int64_t now = clock_->now_ns();
  for (size_t i = 0; i < shared_->slots.size(); ++i) {
    SlotState& s = *shared_->slots[i];
    const double ttl = ttl_s(i);
    if (s.state != ModelState::kLoaded || s.in_flight > 0 || ttl <= 0) continue;
    const int64_t deadline = s.last_used_ns + static_cast<int64_t>(ttl * 1e9);
    if (deadline <= now) {
      char why[64];
      std::snprintf(why, sizeof why, "idle for %.1f s", static_cast<double>(now - s.last_used_ns) * 1e-9);
      unload(i, /*evicted=*/false, why, lock);
      return true;
    }
    *next_deadline_ns = std::min(*next_deadline_ns, deadline);
  }
  return false;
}

void ModelRegistry::stop(double drain_timeout_s) {
  std::vector<Waiter> waiters;
  std::vector<std::shared_ptr<LoadedModel>> models;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    if (!threads_->loader.joinable()) return;
    shared_->stopping = true;
    for (auto& s : shared_->slots) {
      for (Waiter& w : s->waiters) waiters.push_back(std::move(w));
      s->waiters.clear();
    }
  }
  shared_->cv.notify_all();
  threads_->loader.join();  // a load in progress finishes first
  for (Waiter& w : waiters)
    threads_->resume->post([then = std::move(w.then)] { then(Cancelled("the server is shutting down")); });
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    for (auto& s : shared_->slots)
      if (s->loaded) models.push_back(s->loaded);
  }
  std::vector<std::thread> stoppers;
  for (auto& m : models) stoppers.emplace_back([&m, drain_timeout_s] { m->engine->stop(drain_timeout_s); });
  for (std::thread& t : stoppers) t.join();
  threads_->resume.reset();  // runs what is queued, then joins
}

std::vector<ModelStatus> ModelRegistry::status() const {
  std::vector<ModelStatus> out;
  std::lock_guard<std::mutex> lock(shared_->mu);
  for (size_t i = 0; i < shared_->slots.size(); ++i) {
    const SlotState& s = *shared_->slots[i];
    ModelStatus m;
    m.name = s.spec.name;
    m.state = s.state;
    m.is_default = i == 0;
    m.memory_share = s.share;
    m.error = s.state == ModelState::kFailed ? s.error : "";
    if (s.loaded) {
      m.max_model_len = s.loaded->prompt.max_model_len;
      m.running = s.loaded->engine->num_running();
      m.waiting = s.loaded->engine->num_waiting();
      m.free_kv_blocks = s.loaded->engine->num_free_blocks();
    }
    m.in_flight = s.in_flight;
    m.waiting_for_load = static_cast<int32_t>(s.waiters.size());
    m.last_load_s = s.last_load_s;
    m.loads = s.loads;
    m.load_failures = s.load_failures;
    m.unloads = s.unloads;
    m.last_used_unix_ms = s.last_used_unix_ms;
    m.events.assign(s.events.begin(), s.events.end());
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<std::string> ModelRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& s : shared_->slots) out.push_back(s->spec.name);  // fixed after construction
  return out;
}

const std::string& ModelRegistry::default_name() const { return default_name_; }

Metrics* ModelRegistry::default_metrics() const { return shared_->slots[0]->metrics.get(); }

void ModelRegistry::set_startup_seconds(double seconds) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->startup_s = seconds;
}

std::string ModelRegistry::render_metrics() const {
  std::vector<std::string> parts;
  for (const auto& s : shared_->slots) parts.push_back(s->metrics->render_prometheus());  // metrics: fixed
  double startup = -1;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    startup = shared_->startup_s;
  }
  std::string out = merge_expositions(parts);
  if (startup >= 0) {
    ExpositionWriter w(&out);
    w.family("krserve_startup_seconds", "gauge", "Seconds from the process start until the server was ready.");
    w.sample("krserve_startup_seconds", {}, startup);
  }
  return out;
}

}  // namespace kr
