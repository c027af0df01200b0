#include "bench/kr_bench/target.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/embedded_file.h"

namespace kr {
extern const EmbeddedFile kBenchQuestionFiles[];  // generated from bench/questions/
}  // namespace kr

namespace kr::bench {
namespace {
const char* on_off(bool b) { return b ? "on" : "off"; }
}  // namespace

std::vector<std::pair<std::string, std::string>> ServerConfig::env() const {
  return {{"KR_GPU_SCHEDULER", on_off(scheduler)},
          {"KR_AUTO_TUNE", on_off(auto_tune)},
          {"KR_METRICS_EXPORT", on_off(metrics_export)}};
}

std::vector<ServerConfig> standard_configs() {
  return {{"baseline", false, false, false}, {"hybrid", true, false, false}, {"full", true, true, true}};
}

StatusOr<std::vector<ServerConfig>> select_configs(const std::string& csv) {
  std::vector<ServerConfig> out;
  const std::vector<ServerConfig> all = standard_configs();
  size_t start = 0;
  while (start <= csv.size()) {
    const size_t comma = csv.find(',', start);
    const std::string name = csv.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!name.empty()) {
      bool found = false;
      for (const ServerConfig& c : all)
        if (c.name == name) {
          out.push_back(c);
          found = true;
        }
      if (!found) return InvalidArgument("unknown configuration '" + name + "' (baseline, hybrid, full)");
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (out.empty()) return InvalidArgument("no configuration selected");
  return out;
}

Status Target::open(const CommonOptions& opts, const ServerConfig& cfg) {
  close();
  if (!opts.url.empty()) {
    KR_ASSIGN_OR_RETURN(ep_, parse_url(opts.url));
    StatusOr<HttpResponse> h = http_get(ep_, "/health", 5000);
    if (!h.ok()) return h.status();
    if (h->status != 200 && h->status != 404)  // a server without /health still counts
      return Internal("GET /health answered " + std::to_string(h->status));
  } else {
    if (opts.server_bin.empty()) return InvalidArgument("--server-bin or --url is required");
    KR_ASSIGN_OR_RETURN(int port, pick_free_port());
    ep_ = Endpoint{"127.0.0.1", port, ""};
    ServerLaunch launch;
    launch.binary = opts.server_bin;
    launch.args = {"serve", "--model", opts.model_dir, "--host", "127.0.0.1", "--port", std::to_string(port)};
    if (!opts.backend.empty()) {
      launch.args.push_back("--backend");
      launch.args.push_back(opts.backend);
    }
    for (std::string& a : split_args(opts.extra_server_args)) launch.args.push_back(std::move(a));
    launch.env = cfg.env();
    if (cfg.metrics_export) {
      // The metrics listener defaults to a fixed port (9090); a free one keeps parallel runs apart.
      KR_ASSIGN_OR_RETURN(int metrics_port, pick_free_port());
      launch.env.emplace_back("KR_METRICS_PORT", std::to_string(metrics_port));
    }
    launch.log_path = opts.out_dir + "/server-" + cfg.name + ".log";
    proc_ = std::make_unique<ServerProcess>();
    KR_RETURN_IF_ERROR(proc_->start(launch));
    if (Status s = proc_->wait_healthy(ep_, opts.startup_timeout_s * 1000); !s.ok()) {
      close();
      return s;
    }
  }
  model_ = opts.served_model;
  if (model_.empty()) {
    StatusOr<HttpResponse> m = http_get(ep_, "/v1/models", 5000);
    if (m.ok() && m->status == 200) {
      const nlohmann::json j = nlohmann::json::parse(m->body, nullptr, false);
      if (!j.is_discarded() && j.contains("data") && j["data"].is_array() && !j["data"].empty() &&
          j["data"][0].contains("id") && j["data"][0]["id"].is_string())
        model_ = j["data"][0]["id"].get<std::string>();
    }
  }
  if (model_.empty()) model_ = std::filesystem::path(opts.model_dir).filename().string();
  server_version_.clear();
  if (StatusOr<HttpResponse> st = http_get(ep_, "/stats", 5000); st.ok() && st->status == 200) {
    const nlohmann::json j = nlohmann::json::parse(st->body, nullptr, false);
    if (j.is_object() && j.contains("version") && j["version"].is_string()) server_version_ = j["version"];
  }
  return Status::Ok();
}

void Target::close() {
  if (proc_) proc_->stop();
  proc_.reset();
}

std::string questions_source(const std::string& path) { return path.empty() ? "built-in:fifty.json" : path; }

StatusOr<std::vector<std::string>> load_questions(const std::string& path) {
  nlohmann::json j;
  if (path.empty()) {
    const EmbeddedFile* f = find_embedded_file(kBenchQuestionFiles, "fifty.json");
    if (f == nullptr) return Internal("the built-in questions are missing");
    j = nlohmann::json::parse(embedded_text(*f), nullptr, false);
  } else {
    std::ifstream in(path);
    if (!in) return NotFound("cannot open questions file " + path);
    j = nlohmann::json::parse(in, nullptr, false);
  }
  if (j.is_discarded()) return InvalidArgument("questions file is not JSON: " + questions_source(path));
  if (j.is_object() && j.contains("questions")) j = j["questions"];
  if (!j.is_array()) return InvalidArgument("questions file must hold a list: " + path);
  std::vector<std::string> out;
  for (const auto& q : j) {
    if (!q.is_string()) return InvalidArgument("every question must be a string: " + path);
    out.push_back(q.get<std::string>());
  }
  if (out.empty()) return InvalidArgument("no questions in " + path);
  return out;
}

}  // namespace kr::bench
