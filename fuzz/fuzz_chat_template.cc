// Fuzz target: the Jinja-subset chat-template parser and renderer (kr::ChatTemplate).
//
// Input: `<template source> NUL <JSON>`. The JSON is a messages array, or an object
// ({"messages": [...], "tools": [...], "add_generation_prompt": bool, any template kwargs})
// laid over the default context. The seeds (fuzz/make_chat_template_seeds.py) are the real
// templates of the repo's fixtures — Llama 3 (models/tiny-llama3), Qwen3 and Gemma 3
// (tests/golden) — with the contexts of the golden rendering cases, so mutations start from
// the templates and conversations the server meets.
// 1. When the JSON is valid, the context is rendered with each of the three real templates,
//    loaded through read_chat_template_config as the server loads them (default limits).
// 2. The source is parsed and, when it parses, rendered with the context under tight limits.
// Parse and render errors are expected; crashes, hangs, and output past the limits are not.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.h"

namespace {

struct RealTemplate {
  kr::ChatTemplate tmpl;
  std::string bos, eos;
};

const std::vector<RealTemplate>& real_templates() {
  static const std::vector<RealTemplate> templates = [] {
    std::vector<RealTemplate> out;
    for (const char* path : {"/models/tiny-llama3/tokenizer_config.json",
                             "/tests/golden/qwen3-tokenizer/tokenizer_config.json",
                             "/tests/golden/gemma3-template/tokenizer_config.json"}) {
      std::ifstream f(std::string(KR_SOURCE_DIR) + path);
      std::stringstream ss;
      ss << f.rdbuf();
      auto cfg = kr::read_chat_template_config(ss.str());
      if (!cfg.ok()) std::abort();
      auto parsed = kr::ChatTemplate::parse(cfg->source);
      if (!parsed.ok()) std::abort();
      out.push_back({std::move(parsed).value(), cfg->bos_token, cfg->eos_token});
    }
    return out;
  }();
  return templates;
}

// Fuzzed sources render under tighter limits than the server's defaults, so that one
// input stays fast; hitting a limit is an error result like any other.
constexpr kr::jinja::RenderLimits kFuzzLimits{size_t{256} << 10, 20'000, 32, 600};

void check_bounded(const kr::StatusOr<std::string>& out, size_t max_bytes) {
  if (out.ok() && out->size() > max_bytes) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view source = input.substr(0, nul);
  nlohmann::ordered_json ctx = {
      {"messages", nlohmann::ordered_json::array({{{"role", "user"}, {"content", "hi"}}})},
      {"add_generation_prompt", true}};
  bool have_json = false;
  if (nul != std::string_view::npos) {
    auto j = nlohmann::ordered_json::parse(input.substr(nul + 1), nullptr, /*allow_exceptions=*/false);
    if (j.is_array()) {
      ctx["messages"] = std::move(j);
      have_json = true;
    } else if (j.is_object()) {
      for (auto& [k, v] : j.items()) ctx[k] = v;
      have_json = true;
    }
  }
  if (have_json) {
    for (const RealTemplate& t : real_templates()) {
      ctx["bos_token"] = t.bos;
      ctx["eos_token"] = t.eos;
      check_bounded(t.tmpl.render(ctx), kr::jinja::RenderLimits{}.max_output_bytes);
    }
  }
  auto tmpl = kr::ChatTemplate::parse(source, kFuzzLimits);
  if (tmpl.ok()) check_bounded(tmpl->render(ctx), kFuzzLimits.max_output_bytes);
  return 0;
}
