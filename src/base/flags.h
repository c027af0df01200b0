// FlagSet: the command-line flags of one command, each declared once with its
// value, range, default, help and (optionally) environment variable, so that
// parsing, the error messages and --help always agree. Flags are --name VALUE
// or --name=VALUE; switches (boolean flags) take no value. An unknown flag is
// an error that suggests the nearest known one ("did you mean --port?").
// A flag's environment variable is read when the flag is not given.
//
// The bound variables hold the defaults when the flags are declared; help()
// prints them (or a flag's default_text).
//
// Threading: one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace kr {

class FlagSet {
 public:
  // command: "kr-serve serve"; synopsis: what follows it on the usage line.
  FlagSet(std::string command, std::string synopsis);

  // Each returns the flag, so that .env("KR_X"), .default_text("...") can follow.
  struct Flag;
  Flag& string(const char* name, const char* value_name, std::string* out, const char* help);
  Flag& choice(const char* name, std::vector<std::string> choices, std::string* out, const char* help);
  Flag& int32(const char* name, int64_t lo, int64_t hi, int32_t* out, const char* help);
  Flag& int64(const char* name, int64_t lo, int64_t hi, int64_t* out, const char* help);
  Flag& number(const char* name, double lo, double hi, double* out, const char* help);
  Flag& switch_(const char* name, bool* out, const char* help);  // present: true (env: on/off)
  // Any other value: `set` parses and stores it, or returns the error text.
  Flag& custom(const char* name, const char* value_name, std::string default_text, const char* help,
               std::function<std::optional<std::string>(const std::string& value)> set);
  // A heading in --help before the flags declared next.
  void section(std::string title);

  // Parses argv[begin, argc) and then the environment of flags not given.
  // Returns false with the flags untouched past the error when `*error` is set;
  // `*help` is set when --help or -h was given (nothing else is parsed then).
  bool parse(int argc, char** argv, int begin, bool* help, std::string* error);
  std::string help() const;  // "usage: ..." and one line per flag with its default
  // Whether the last parse() saw the flag on the command line (not from the environment).
  bool given(std::string_view name) const;

  struct Flag {
    enum Kind { kString, kChoice, kInt32, kInt64, kNumber, kSwitch, kCustom };
    std::string name;  // without the leading --
    std::string value_name;
    std::string help;
    std::string default_shown;
    std::string env_var;
    Kind kind = kString;
    int64_t lo = 0, hi = 0;
    double dlo = 0, dhi = 0;
    std::vector<std::string> choices;
    void* out = nullptr;
    std::function<std::optional<std::string>(const std::string&)> set;
    size_t section = 0;
    Flag& env(const char* var) {
      env_var = var;
      return *this;
    }
    Flag& default_text(std::string text) {
      default_shown = std::move(text);
      return *this;
    }
  };

 private:
  Flag& add(Flag f);
  // Stores `value` into flag f; returns the error text on a bad value. `source` names it ("--port", "KR_PORT").
  std::optional<std::string> assign(const Flag& f, const std::string& value, const std::string& source);
  std::string suggestion(const std::string& name) const;

  std::string command_, synopsis_;
  std::vector<Flag> flags_;
  std::vector<bool> given_;
  std::vector<std::string> sections_;
};

// Edit distance (insert, delete, replace; each 1), for "did you mean" hints.
size_t edit_distance(std::string_view a, std::string_view b);
// The candidate nearest to `word` when near enough to be a typo, else "".
std::string nearest(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace kr
