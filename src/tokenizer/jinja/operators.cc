#include "tokenizer/jinja/operators.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>

namespace kr::jinja {
namespace {

std::string py_type(const Value& v) {
  switch (v.type()) {
    case Value::Type::kUndefined: return "Undefined";
    case Value::Type::kNone: return "NoneType";
    case Value::Type::kBool: return "bool";
    case Value::Type::kInt: return "int";
    case Value::Type::kFloat: return "float";
    case Value::Type::kString: return "str";
    case Value::Type::kList: return v.as_list().is_tuple ? "tuple" : "list";
    case Value::Type::kDict: return "dict";
    case Value::Type::kCallable: return "function";
  }
  return "object";
}

[[noreturn]] void unsupported(const std::string& op, const Value& a, const Value& b, const CallSite& site) {
  site.fail("TypeError: unsupported operand type(s) for " + op + ": '" + py_type(a) + "' and '" + py_type(b) + "'");
}

Value repeat(const Value& seq, int64_t times, const CallSite& site) {
  if (times < 0) times = 0;
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty()) site.check_size(s.size() * static_cast<size_t>(std::min<int64_t>(times, int64_t{1} << 40)));
    std::string out;
    for (int64_t i = 0; i < times; ++i) out += s;
    return Value(std::move(out));
  }
  const List& l = seq.as_list();
  if (!l.items.empty()) site.check_size(l.items.size() * static_cast<size_t>(std::min<int64_t>(times, int64_t{1} << 40)));
  std::vector<Value> out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), l.items.begin(), l.items.end());
  return Value::list(std::move(out), l.is_tuple);
}

bool is_int_like(const Value& v) { return v.is_int() || v.is_bool(); }

Value arithmetic(const std::string& op, const Value& a, const Value& b, const CallSite& site) {
  if (is_int_like(a) && is_int_like(b)) {
    int64_t x = a.as_int(), y = b.as_int(), r = 0;
    if (op == "+") {
      if (__builtin_add_overflow(x, y, &r)) site.fail("integer overflow");
      return Value(r);
    }
    if (op == "-") {
      if (__builtin_sub_overflow(x, y, &r)) site.fail("integer overflow");
      return Value(r);
    }
    if (op == "*") {
      if (__builtin_mul_overflow(x, y, &r)) site.fail("integer overflow");
      return Value(r);
    }
    if (op == "/") {
      if (y == 0) site.fail("ZeroDivisionError: division by zero");
      return Value(static_cast<double>(x) / static_cast<double>(y));
    }
    if (op == "//" || op == "%") {
      if (y == 0) site.fail("ZeroDivisionError: integer division or modulo by zero");
      if (x == std::numeric_limits<int64_t>::min() && y == -1) site.fail("integer overflow");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {  // Python floors toward negative infinity
        --q;
        m += y;
      }
      return op == "//" ? Value(q) : Value(m);
    }
    if (op == "**") {
      if (y < 0) return Value(std::pow(static_cast<double>(x), static_cast<double>(y)));
      int64_t result = 1;
      for (int64_t i = 0; i < y; ++i) {
        if (__builtin_mul_overflow(result, x, &result)) site.fail("integer overflow");
        if (result == 0 || result == 1) break;
      }
      return Value(result);
    }
  }
  double x = a.as_float(), y = b.as_float();
  if (op == "+") return Value(x + y);
  if (op == "-") return Value(x - y);
  if (op == "*") return Value(x * y);
  if (op == "/") {
    if (y == 0) site.fail("ZeroDivisionError: float division by zero");
    return Value(x / y);
  }
  if (op == "//" || op == "%") {
    if (y == 0) site.fail("ZeroDivisionError: float modulo");
    double m = std::fmod(x, y);
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    return op == "//" ? Value(std::floor((x - m) / y + 0.5)) : Value(m);
  }
  if (op == "**") return Value(std::pow(x, y));
  site.fail("unknown operator '" + op + "'");
}

// Python's printf-style str % args for %s %r %d %i %f (with .N precision) and %%.
Value percent_format(const std::string& fmt, const Value& args, const CallSite& site) {
  std::vector<Value> items = args.is_list() && args.as_list().is_tuple ? args.as_list().items : std::vector<Value>{args};
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size()) site.fail("ValueError: incomplete format");
    int precision = -1;
    if (fmt[i] == '.') {
      precision = 0;
      while (++i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i]))) precision = std::min(precision * 10 + (fmt[i] - '0'), 50);
      if (i >= fmt.size()) site.fail("ValueError: incomplete format");
    }
    char conv = fmt[i];
    if (conv == '%') {
      out += '%';
      continue;
    }
    if (next >= items.size()) site.fail("TypeError: not enough arguments for format string");
    const Value& v = items[next++];
    if (conv == 's') {
      out += v.str();
    } else if (conv == 'r') {
      out += v.repr();
    } else if (conv == 'd' || conv == 'i') {
      if (!v.is_number()) site.fail("TypeError: %d format: a real number is required, not " + py_type(v));
      out += std::to_string(v.is_float() ? static_cast<int64_t>(v.as_float()) : v.as_int());
    } else if (conv == 'f') {
      if (!v.is_number()) site.fail("TypeError: must be real number, not " + py_type(v));
      char buf[400];
      std::snprintf(buf, sizeof(buf), "%.*f", precision < 0 ? 6 : precision, v.as_float());
      out += buf;
    } else {
      site.fail(std::string("unsupported format character '") + conv + "'");
    }
    site.check_size(out.size());
  }
  if (next < items.size()) site.fail("TypeError: not all arguments converted during string formatting");
  return Value(std::move(out));
}

}  // namespace

[[noreturn]] void fail_undefined(const Value& v, const CallSite& site) {
  std::string hint = v.is_undefined() ? v.undefined_hint() : "";
  site.fail("UndefinedError: " + (hint.empty() ? std::string("value is undefined") : hint));
}

Value binary_op(const std::string& op, const Value& a, const Value& b, const CallSite& site) {
  if (op == "==") return Value(values_equal(a, b));
  if (op == "!=") return Value(!values_equal(a, b));
  if (op == "in") return Value(contains(b, a, site));
  if (op == "not in") return Value(!contains(b, a, site));
  if (op == "~") {
    std::string s = a.str();
    s += b.str();
    site.check_size(s.size());
    return Value(std::move(s));
  }
  if (op == "<") return Value(compare_values(a, b, site) < 0);
  if (op == "<=") return Value(compare_values(a, b, site) <= 0);
  if (op == ">") return Value(compare_values(a, b, site) > 0);
  if (op == ">=") return Value(compare_values(a, b, site) >= 0);
  if (a.is_undefined()) fail_undefined(a, site);
  if (b.is_undefined()) fail_undefined(b, site);
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      site.check_size(a.as_string().size() + b.as_string().size());
      return Value(a.as_string() + b.as_string());
    }
    if (a.is_list() && b.is_list() && a.as_list().is_tuple == b.as_list().is_tuple) {
      site.check_size(a.as_list().items.size() + b.as_list().items.size());
      std::vector<Value> items = a.as_list().items;
      items.insert(items.end(), b.as_list().items.begin(), b.as_list().items.end());
      return Value::list(std::move(items), a.as_list().is_tuple);
    }
    if (a.is_string() && !b.is_string()) {
      site.fail("TypeError: can only concatenate str (not \"" + py_type(b) + "\") to str");
    }
  }
  if (op == "%" && a.is_string()) return percent_format(a.as_string(), b, site);
  if (op == "*") {
    if ((a.is_string() || a.is_list()) && is_int_like(b)) return repeat(a, b.as_int(), site);
    if ((b.is_string() || b.is_list()) && is_int_like(a)) return repeat(b, a.as_int(), site);
  }
  if (a.is_number() && b.is_number()) return arithmetic(op, a, b, site);
  unsupported(op, a, b, site);
}

int compare_values(const Value& a, const Value& b, const CallSite& site) {
  if (a.is_undefined()) fail_undefined(a, site);
  if (b.is_undefined()) fail_undefined(b, site);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      double x = a.as_float(), y = b.as_float();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    int64_t x = a.as_int(), y = b.as_int();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    int c = a.as_string().compare(b.as_string());  // UTF-8 byte order = code point order
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list()) {
    const auto& x = a.as_list().items;
    const auto& y = b.as_list().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (values_equal(x[i], y[i])) continue;
      return compare_values(x[i], y[i], site);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  site.fail("TypeError: ordering not supported between instances of '" + py_type(a) + "' and '" + py_type(b) + "'");
}

bool contains(const Value& container, const Value& item, const CallSite& site) {
  switch (container.type()) {
    case Value::Type::kUndefined: return false;
    case Value::Type::kString:
      if (!item.is_string()) {
        site.fail("TypeError: 'in <string>' requires string as left operand, not " + py_type(item));
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Type::kList:
      for (const Value& v : container.as_list().items) {
        if (values_equal(v, item)) return true;
      }
      return false;
    case Value::Type::kDict:
      return item.is_string() && container.as_dict()->find(item.as_string()) != nullptr;
    default:
      site.fail("TypeError: argument of type '" + py_type(container) + "' is not iterable");
  }
}

std::vector<Value> iterate(const Value& v, const CallSite& site) {
  switch (v.type()) {
    case Value::Type::kUndefined: return {};
    case Value::Type::kList: return v.as_list().items;
    case Value::Type::kDict: {
      std::vector<Value> keys;
      for (const auto& [k, unused] : v.as_dict()->entries()) keys.emplace_back(k);
      return keys;
    }
    case Value::Type::kString: {
      std::vector<Value> chars;
      for (std::string& c : utf8_chars(v.as_string())) chars.emplace_back(std::move(c));
      return chars;
    }
    default: site.fail("TypeError: '" + py_type(v) + "' object is not iterable");
  }
}

int64_t length_of(const Value& v, const CallSite& site) {
  switch (v.type()) {
    case Value::Type::kUndefined: return 0;
    case Value::Type::kString: return static_cast<int64_t>(utf8_length(v.as_string()));
    case Value::Type::kList: return static_cast<int64_t>(v.as_list().items.size());
    case Value::Type::kDict: return static_cast<int64_t>(v.as_dict()->size());
    default: site.fail("TypeError: object of type '" + py_type(v) + "' has no len()");
  }
}

Value get_attr(const Value& obj, const std::string& name, const CallSite& site) {
  if (obj.is_undefined()) fail_undefined(obj, site);
  if (obj.is_dict()) {
    if (const Value* v = obj.as_dict()->find(name)) return *v;
  }
  return Value::undefined(std::string("'") + obj.type_repr() + "' has no attribute '" + name + "'");
}

Value get_item(const Value& obj, const Value& key, const CallSite& site) {
  if (obj.is_undefined()) fail_undefined(obj, site);
  if (obj.is_dict()) {
    if (key.is_string()) return get_attr(obj, key.as_string(), site);
    return Value::undefined(std::string("'") + obj.type_repr() + "' has no attribute " + key.repr());
  }
  if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.as_int();
    if (obj.is_list()) {
      const auto& items = obj.as_list().items;
      int64_t n = static_cast<int64_t>(items.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return items[static_cast<size_t>(i)];
    } else {
      std::vector<std::string> chars = utf8_chars(obj.as_string());
      int64_t n = static_cast<int64_t>(chars.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return Value(chars[static_cast<size_t>(i)]);
    }
    return Value::undefined(std::string("'") + obj.type_repr() + "' has no element " + key.repr());
  }
  if (key.is_string()) return get_attr(obj, key.as_string(), site);
  return Value::undefined(std::string("'") + obj.type_repr() + "' has no element " + key.repr());
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step, const CallSite& site) {
  if (obj.is_undefined()) fail_undefined(obj, site);
  auto as_index = [&](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!v.is_int() && !v.is_bool()) site.fail(std::string("TypeError: slice ") + what + " must be an integer");
    return v.as_int();
  };
  int64_t st = as_index(step, "step").value_or(1);
  if (st == 0) site.fail("ValueError: slice step cannot be zero");
  std::vector<std::string> chars;
  int64_t n;
  if (obj.is_string()) {
    chars = utf8_chars(obj.as_string());
    n = static_cast<int64_t>(chars.size());
  } else if (obj.is_list()) {
    n = static_cast<int64_t>(obj.as_list().items.size());
  } else {
    site.fail("TypeError: '" + obj.type_repr() + "' is not subscriptable");
  }
  // Python's PySlice_AdjustIndices.
  auto adjust = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t i = *v;
    if (i < 0) {
      i += n;
      if (i < 0) i = st < 0 ? -1 : 0;
    } else if (i >= n) {
      i = st < 0 ? n - 1 : n;
    }
    return i;
  };
  int64_t b = adjust(as_index(start, "start"), st < 0 ? n - 1 : 0);
  int64_t e = adjust(as_index(stop, "stop"), st < 0 ? -1 : n);
  std::vector<size_t> picks;
  for (int64_t i = b; st > 0 ? i < e : i > e; i += st) picks.push_back(static_cast<size_t>(i));
  if (obj.is_string()) {
    std::string out;
    for (size_t i : picks) out += chars[i];
    return Value(std::move(out));
  }
  std::vector<Value> out;
  for (size_t i : picks) out.push_back(obj.as_list().items[i]);
  return Value::list(std::move(out), obj.as_list().is_tuple);
}

}  // namespace kr::jinja
