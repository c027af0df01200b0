// Errors raised while parsing or rendering a template. They are C++ exceptions
// inside the jinja module only: ChatTemplate (chat_template.cc) catches them and
// returns a Status, so none crosses the module boundary.
#pragma once

#include <stdexcept>
#include <string>

namespace kr::jinja {

class TemplateError : public std::runtime_error {
 public:
  // line 0 = unknown; the message then carries no " at line N" suffix.
  TemplateError(const std::string& message, int line)
      : std::runtime_error(line > 0 ? message + " at line " + std::to_string(line) : message),
        line_(line) {}
  int line() const { return line_; }

 private:
  int line_;
};

// A limit of the renderer was hit (output size, loop iterations, depth).
class LimitError : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

}  // namespace kr::jinja
