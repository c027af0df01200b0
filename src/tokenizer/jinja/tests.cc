#include "tokenizer/jinja/tests.h"

#include <cctype>
#include <cmath>
#include <string_view>

#include "tokenizer/jinja/operators.h"

namespace kr::jinja {
namespace {

constexpr std::string_view kTests[] = {
    "defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "iterable",
    "sequence", "boolean", "true", "false", "callable", "odd", "even", "divisibleby", "equalto", "eq",
    "==", "ne", "!=", "lt", "<", "lessthan", "le", "<=", "gt", ">", "greaterthan", "ge", ">=", "in",
    "sameas", "lower", "upper",
};

const Value& arg(const CallArgs& args, const CallSite& site, const std::string& test) {
  const Value* v = args.get(0, "value");
  if (!v) site.fail("test '" + test + "' needs an argument");
  return *v;
}

int64_t int_operand(const Value& v, const std::string& test, const CallSite& site) {
  if (v.is_undefined()) fail_undefined(v, site);
  if (v.is_int() || v.is_bool()) return v.as_int();
  if (v.is_float() && std::floor(v.as_float()) == v.as_float()) return static_cast<int64_t>(v.as_float());
  site.fail("TypeError: test '" + test + "' needs an integer, got " + v.type_repr());
}

}  // namespace

bool is_known_test(const std::string& name) {
  for (std::string_view t : kTests) {
    if (t == name) return true;
  }
  return false;
}

bool apply_test(const std::string& name, const Value& v, const CallArgs& args, const CallSite& site) {
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
  if (name == "sequence") return v.is_list() || v.is_dict() || v.is_string();
  if (name == "callable") return v.is_callable();
  if (name == "odd") return int_operand(v, name, site) % 2 != 0;
  if (name == "even") return int_operand(v, name, site) % 2 == 0;
  if (name == "divisibleby") {
    int64_t d = int_operand(arg(args, site, name), name, site);
    if (d == 0) site.fail("ZeroDivisionError: divisibleby 0");
    return int_operand(v, name, site) % d == 0;
  }
  if (name == "lower" || name == "upper") {
    if (!v.is_string()) return false;
    bool any_cased = false;
    for (unsigned char c : v.as_string()) {
      if (std::isalpha(c)) {
        any_cased = true;
        if (name == "lower" ? std::isupper(c) : std::islower(c)) return false;
      }
    }
    return any_cased;
  }
  if (name == "sameas") {
    const Value& other = arg(args, site, name);
    if (v.is_none() || v.is_bool() || v.is_undefined()) return v.type() == other.type() && values_equal(v, other);
    if (v.is_list() && other.is_list()) return &v.as_list() == &other.as_list();
    if (v.is_dict() && other.is_dict()) return v.as_dict() == other.as_dict();
    return false;
  }
  const Value& other = arg(args, site, name);
  if (name == "equalto" || name == "eq" || name == "==") return values_equal(v, other);
  if (name == "ne" || name == "!=") return !values_equal(v, other);
  if (name == "in") return contains(other, v, site);
  int c = compare_values(v, other, site);
  if (name == "lt" || name == "<" || name == "lessthan") return c < 0;
  if (name == "le" || name == "<=") return c <= 0;
  if (name == "gt" || name == ">" || name == "greaterthan") return c > 0;
  if (name == "ge" || name == ">=") return c >= 0;
  site.fail("unsupported test '" + name + "'");
}

}  // namespace kr::jinja
