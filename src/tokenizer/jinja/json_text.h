// Value -> JSON text, byte for byte as Python's json.dumps writes it (the
// `tojson` filter that transformers installs: ensure_ascii=False by default,
// separators ", " and ": ", or "," and ": " when indenting). Pure function.
#pragma once

#include <string>

#include "tokenizer/jinja/call_site.h"

namespace kr::jinja {

struct JsonStyle {
  int indent = -1;  // < 0: one line
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
  bool ensure_ascii = false;
};

// Throws TemplateError for values JSON cannot hold (undefined, functions).
std::string to_json_text(const Value& value, const JsonStyle& style, const CallSite& site);

}  // namespace kr::jinja
