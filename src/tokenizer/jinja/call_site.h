// What filters, tests, methods and builtin functions receive besides their
// operand: the call's arguments, the line (for messages) and the render limits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/error.h"
#include "tokenizer/jinja/limits.h"
#include "tokenizer/jinja/value.h"

namespace kr::jinja {

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // Argument `index` by position, or by keyword `name`; null when absent.
  const Value* get(size_t index, const char* name) const {
    if (index < positional.size()) return &positional[index];
    for (const auto& [k, v] : keyword) {
      if (k == name) return &v;
    }
    return nullptr;
  }
};

struct CallSite {
  int line;
  const RenderLimits* limits;

  [[noreturn]] void fail(const std::string& message) const { throw TemplateError(message, line); }
  // An integer argument (bools count, as in Python); TypeError otherwise.
  int64_t int_arg(const Value& v, const char* what) const {
    if (!v.is_int() && !v.is_bool()) fail(std::string("TypeError: ") + what + " must be an integer, not " + v.type_repr());
    return v.as_int();
  }
  // Throws LimitError when a string/list being built would pass the output limit.
  void check_size(size_t size) const {
    if (size > limits->max_output_bytes) {
      throw LimitError("value exceeds the output limit of " + std::to_string(limits->max_output_bytes) + " bytes",
                       line);
    }
  }
};

}  // namespace kr::jinja
