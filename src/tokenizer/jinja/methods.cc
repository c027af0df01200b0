#include "tokenizer/jinja/methods.h"

#include <cctype>

#include "tokenizer/jinja/operators.h"
#include "tokenizer/jinja/py_string.h"

namespace kr::jinja {
namespace {

std::optional<std::string> opt_string(const CallArgs& a, size_t i, const char* name, const CallSite& site) {
  const Value* v = a.get(i, name);
  if (!v || v->is_none()) return std::nullopt;
  if (!v->is_string()) site.fail("TypeError: " + std::string(name) + " must be str or None, not " + v->type_repr());
  return v->as_string();
}

const std::string& need_string(const CallArgs& a, size_t i, const char* name, const std::string& method,
                               const CallSite& site) {
  const Value* v = a.get(i, name);
  if (!v) site.fail("TypeError: " + method + "() missing argument '" + name + "'");
  if (!v->is_string()) site.fail("TypeError: " + method + "() argument must be str, not " + v->type_repr());
  return v->as_string();
}

bool affix_matches(const std::string& s, const Value& affix, bool prefix, const CallSite& site) {
  auto one = [&](const Value& a) {
    if (!a.is_string()) site.fail("TypeError: startswith/endswith argument must be str or a tuple of str");
    const std::string& x = a.as_string();
    if (x.size() > s.size()) return false;
    return prefix ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (affix.is_list()) {
    for (const Value& a : affix.as_list().items) {
      if (one(a)) return true;
    }
    return false;
  }
  return one(affix);
}

template <typename Pred>
bool all_chars(const std::string& s, Pred pred) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!pred(c)) return false;
  }
  return true;
}

// str.format with {} / {0} / {name} fields and {{ }} escapes; format specs are rejected.
std::string py_format(const std::string& fmt, const CallArgs& a, const CallSite& site) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}' ) {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') ++i;
      out += '}';
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    size_t close = fmt.find('}', i);
    if (close == std::string::npos) site.fail("ValueError: single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    if (field.find_first_of(":!") != std::string::npos) site.fail("unsupported format spec '{" + field + "}'");
    const Value* v = nullptr;
    if (field.empty()) {
      v = a.get(auto_index++, "");
    } else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
      v = a.get(static_cast<size_t>(std::atoi(field.c_str())), "");
    } else {
      v = a.get(SIZE_MAX, field.c_str());
    }
    if (!v) site.fail("IndexError: format field '{" + field + "}' has no argument");
    out += v->str();
    site.check_size(out.size());
    i = close;
  }
  return out;
}

std::optional<Value> string_method(const std::string& s, const std::string& name, const CallArgs& a,
                                   const CallSite& site) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    return Value(py_strip(s, opt_string(a, 0, "chars", site), name != "rstrip", name != "lstrip"));
  }
  if (name == "split") {
    const Value* maxsplit = a.get(1, "maxsplit");
    std::vector<Value> parts;
    std::optional<std::string> sep = opt_string(a, 0, "sep", site);
    if (sep && sep->empty()) site.fail("ValueError: empty separator");
    for (std::string& p : py_split(s, sep, maxsplit ? static_cast<long>(site.int_arg(*maxsplit, "maxsplit")) : -1)) {
      parts.emplace_back(std::move(p));
    }
    return Value::list(std::move(parts));
  }
  if (name == "splitlines") {
    std::vector<Value> parts;
    for (std::string& p : py_splitlines(s)) parts.emplace_back(std::move(p));
    return Value::list(std::move(parts));
  }
  if (name == "startswith" || name == "endswith") {
    const Value* affix = a.get(0, "prefix");
    if (!affix) site.fail("TypeError: " + name + "() takes at least 1 argument");
    return Value(affix_matches(s, *affix, name == "startswith", site));
  }
  if (name == "replace") {
    const Value* count = a.get(2, "count");
    bool too_big = false;
    std::string out = py_replace(s, need_string(a, 0, "old", name, site), need_string(a, 1, "new", name, site),
                                 count ? static_cast<long>(site.int_arg(*count, "count")) : -1, site.limits->max_output_bytes,
                                 &too_big);
    if (too_big) site.check_size(site.limits->max_output_bytes + 1);
    return Value(std::move(out));
  }
  if (name == "upper") return Value(py_upper(s));
  if (name == "lower") return Value(py_lower(s));
  if (name == "title") return Value(py_title(s));
  if (name == "capitalize") return Value(py_capitalize(s));
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    const std::string& sub = need_string(a, 0, "sub", name, site);
    size_t p = (name == "find" || name == "index") ? s.find(sub) : s.rfind(sub);
    if (p == std::string::npos) {
      if (name == "index" || name == "rindex") site.fail("ValueError: substring not found");
      return Value(int64_t{-1});
    }
    return Value(static_cast<int64_t>(utf8_length(s.substr(0, p))));
  }
  if (name == "count") return Value(static_cast<int64_t>(py_count(s, need_string(a, 0, "sub", name, site))));
  if (name == "join") {
    const Value* items = a.get(0, "iterable");
    if (!items) site.fail("TypeError: join() takes exactly one argument");
    std::string out;
    bool first = true;
    for (const Value& item : iterate(*items, site)) {
      if (!item.is_string()) site.fail("TypeError: sequence item: expected str instance, " + item.type_repr() + " found");
      if (!first) out += s;
      first = false;
      out += item.as_string();
      site.check_size(out.size());
    }
    return Value(std::move(out));
  }
  if (name == "format") return Value(py_format(s, a, site));
  if (name == "isdigit") return Value(all_chars(s, [](unsigned char c) { return std::isdigit(c) != 0; }));
  if (name == "isalpha") return Value(all_chars(s, [](unsigned char c) { return std::isalpha(c) != 0; }));
  if (name == "isalnum") return Value(all_chars(s, [](unsigned char c) { return std::isalnum(c) != 0; }));
  if (name == "isspace") return Value(all_chars(s, [](unsigned char c) { return std::isspace(c) != 0; }));
  if (name == "islower" || name == "isupper") {
    bool cased = false;
    for (unsigned char c : s) {
      if (!std::isalpha(c)) continue;
      cased = true;
      if (name == "islower" ? std::isupper(c) : std::islower(c)) return Value(false);
    }
    return Value(cased);
  }
  return std::nullopt;
}

std::optional<Value> dict_method(const Value& d, const std::string& name, const CallArgs& a, const CallSite& site) {
  const Dict& dict = *d.as_dict();
  if (dict.is_namespace) return std::nullopt;
  if (name == "get") {
    const Value* key = a.get(0, "key");
    if (!key) site.fail("TypeError: get expected at least 1 argument");
    const Value* dflt = a.get(1, "default");
    if (key->is_string()) {
      if (const Value* v = dict.find(key->as_string())) return *v;
    }
    return dflt ? *dflt : Value::none();
  }
  if (name == "items" || name == "keys" || name == "values") {
    std::vector<Value> out;
    for (const auto& [k, v] : dict.entries()) {
      if (name == "items") out.push_back(Value::list({Value(k), v}, true));
      else if (name == "keys") out.emplace_back(k);
      else out.push_back(v);
    }
    return Value::list(std::move(out));
  }
  return std::nullopt;
}

}  // namespace

std::optional<Value> call_method(const Value& obj, const std::string& name, const CallArgs& args,
                                 const CallSite& site) {
  if (obj.is_string()) return string_method(obj.as_string(), name, args, site);
  if (obj.is_dict()) return dict_method(obj, name, args, site);
  return std::nullopt;
}

}  // namespace kr::jinja
