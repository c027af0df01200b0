// Test helper: parse + render a small template through the public API.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.h"

namespace kr::jinja::testing {

// Renders `source` with `context` (JSON text); returns the text or "ERROR: <message>".
inline std::string render(const std::string& source, const std::string& context = "{}",
                          RenderLimits limits = {}) {
  auto t = ChatTemplate::parse(source, limits);
  if (!t.ok()) return "ERROR: " + t.status().message();
  auto out = t->render(nlohmann::ordered_json::parse(context));
  if (!out.ok()) return "ERROR: " + out.status().message();
  return *out;
}

}  // namespace kr::jinja::testing
