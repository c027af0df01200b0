#include "bench/kr_bench/swap.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/build_info.h"
#include "bench/kr_bench/http_client.h"
#include "bench/kr_bench/run_info.h"
#include "bench/kr_bench/server_process.h"

namespace kr::bench {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double since_s(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

StatusOr<json> get_json(const Endpoint& ep, const std::string& path, int timeout_ms) {
  auto r = http_get(ep, path, timeout_ms);
  if (!r.ok()) return r.status();
  if (r->status != 200) return Internal("GET " + path + ": HTTP " + std::to_string(r->status));
  json j = json::parse(r->body, nullptr, false);
  if (j.is_discarded()) return Internal("GET " + path + ": not JSON");
  return j;
}

// krserve_startup_seconds from /metrics, -1 when absent.
double startup_seconds(const Endpoint& ep) {
  auto r = http_get(ep, "/metrics", 10'000);
  if (!r.ok()) return -1;
  const std::string key = "\nkrserve_startup_seconds ";
  const size_t at = r->body.find(key);
  return at == std::string::npos ? -1 : std::atof(r->body.c_str() + at + key.size());
}

// One completion of one token for `model`; seconds from send to the whole answer.
StatusOr<double> one_token(const Endpoint& ep, const std::string& model, int timeout_ms) {
  HttpRequest req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.headers = {{"Content-Type", "application/json"}};
  req.body = json{{"model", model}, {"prompt", "Hello"}, {"max_tokens", 1}, {"temperature", 0}}.dump();
  std::string body;
  const auto t0 = Clock::now();
  auto head = http_fetch(ep, req, [&](std::string_view b) { body.append(b); return true; }, timeout_ms);
  if (!head.ok()) return head.status();
  if (head->status != 200) return Internal(model + ": HTTP " + std::to_string(head->status) + ": " + body);
  return since_s(t0);
}

json model_entry(const json& list, const std::string& name) {
  for (const json& m : list["data"])
    if (m.value("id", "") == name) return m;
  return json::object();
}

// The seconds of the model's last event of this kind, or null.
json last_event_seconds(const json& model, const char* kind) {
  json out = nullptr;
  for (const json& e : model.value("events", json::array()))
    if (e.value("event", "") == kind) out = e["seconds"];
  return out;
}

}  // namespace

int run_swap(const SwapOptions& o) {
  auto port = pick_free_port();
  if (!port.ok()) return std::fprintf(stderr, "kr-bench swap: %s\n", port.status().message().c_str()), 1;
  ::mkdir(o.out_dir.c_str(), 0755);
  ServerLaunch launch;
  launch.binary = o.server_bin;
  launch.args = {"serve", "--models-config", o.models_config, "--max-loaded-models", "1", "--host", "127.0.0.1",
                 "--port", std::to_string(*port), "--backend", o.backend};
  for (const std::string& a : split_args(o.extra_server_args)) launch.args.push_back(a);
  launch.log_path = o.out_dir + "/model-swap-server.log";
  Endpoint ep;
  ep.port = *port;
  ServerProcess server;
  const auto t0 = Clock::now();
  if (Status s = server.start(launch); !s.ok()) return std::fprintf(stderr, "kr-bench swap: %s\n", s.message().c_str()), 1;
  if (Status s = server.wait_healthy(ep, o.startup_timeout_s * 1000); !s.ok()) {
    std::fprintf(stderr, "kr-bench swap: %s\n%s\n", s.message().c_str(), server.log_tail().c_str());
    return 1;
  }
  const double cold_wall_s = since_s(t0);
  const double cold_server_s = startup_seconds(ep);
  auto list = get_json(ep, "/v1/models", 10'000);
  if (!list.ok()) return std::fprintf(stderr, "kr-bench swap: %s\n", list.status().message().c_str()), 1;
  std::vector<std::string> names;
  for (const json& m : (*list)["data"]) names.push_back(m.value("id", ""));
  if (names.size() < 2) return std::fprintf(stderr, "kr-bench swap: the config must list two or more models\n"), 1;
  const json first = model_entry(*list, names[0]);
  std::printf("cold start to ready: %.2f s (server: %.2f s; first model '%s' loaded in %.2f s)\n", cold_wall_s,
              cold_server_s, names[0].c_str(), first.value("last_load_seconds", 0.0));

  json swaps = json::array();
  std::string loaded = names[0];
  std::printf("%-5s %-24s %-24s %10s %10s %10s %10s\n", "round", "from", "to", "request_s", "unload_s", "load_s",
              "warm_s");
  for (int round = 1; round <= o.rounds; ++round) {
    for (size_t k = 0; k < names.size(); ++k) {
      const std::string& to = names[(k + 1) % names.size()];
      auto cold = one_token(ep, to, o.request_timeout_s * 1000);
      if (!cold.ok()) return std::fprintf(stderr, "kr-bench swap: %s\n", cold.status().message().c_str()), 1;
      auto warm = one_token(ep, to, o.request_timeout_s * 1000);
      if (!warm.ok()) return std::fprintf(stderr, "kr-bench swap: %s\n", warm.status().message().c_str()), 1;
      auto after = get_json(ep, "/v1/models", 10'000);
      if (!after.ok()) return std::fprintf(stderr, "kr-bench swap: %s\n", after.status().message().c_str()), 1;
      const json to_m = model_entry(*after, to), from_m = model_entry(*after, loaded);
      json s = {{"round", round},
                {"from", loaded},
                {"to", to},
                {"request_s", *cold},
                {"unload_s", last_event_seconds(from_m, "unloaded")},
                {"load_s", to_m.value("last_load_seconds", json(nullptr))},
                {"warm_request_s", *warm}};
      std::printf("%-5d %-24s %-24s %10.3f %10.3f %10.3f %10.3f\n", round, loaded.c_str(), to.c_str(), *cold,
                  s["unload_s"].is_number() ? s["unload_s"].get<double>() : -1.0,
                  s["load_s"].is_number() ? s["load_s"].get<double>() : -1.0, *warm);
      swaps.push_back(std::move(s));
      loaded = to;
    }
  }
  server.stop();
  json report = {{"kind", "model_swap"},
                 {"version", build_version()},
                 {"gpu", gpu_name()},
                 {"backend", o.backend},
                 {"models_config", o.models_config},
                 {"models", names},
                 {"cold_start_wall_s", cold_wall_s},
                 {"cold_start_server_s", cold_server_s},
                 {"first_model_load_s", first.value("last_load_seconds", json(nullptr))},
                 {"swaps", swaps}};
  const std::string path = o.out_dir + "/model-swap-" + std::to_string(std::time(nullptr)) + ".json";
  std::ofstream(path) << report.dump(2) << "\n";
  std::printf("saved %s\n", path.c_str());
  return 0;
}

}  // namespace kr::bench
