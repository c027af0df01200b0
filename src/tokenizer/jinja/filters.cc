#include "tokenizer/jinja/filters.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <string_view>

#include "tokenizer/jinja/json_text.h"
#include "tokenizer/jinja/operators.h"
#include "tokenizer/jinja/py_string.h"
#include "tokenizer/jinja/tests.h"

namespace kr::jinja {
namespace {

using FilterFn = Value (*)(const Value&, const CallArgs&, const CallSite&);

bool arg_bool(const CallArgs& a, size_t i, const char* name, bool dflt) {
  const Value* v = a.get(i, name);
  return v ? v->truthy() : dflt;
}

std::optional<std::string> arg_string(const CallArgs& a, size_t i, const char* name) {
  const Value* v = a.get(i, name);
  if (!v || v->is_none() || v->is_undefined()) return std::nullopt;
  return v->str();
}

// Jinja's make_attrgetter: "a.b.0" walks dicts and list indices.
Value attr_path(const Value& item, const std::string& path, const CallSite& site) {
  Value cur = item;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    cur = numeric ? get_item(cur, Value(static_cast<int64_t>(std::atoll(part.c_str()))), site) : get_item(cur, Value(part), site);
    if (dot == std::string::npos) return cur;
    if (cur.is_undefined()) return cur;
    start = dot + 1;
  }
}

Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(py_lower(v.as_string()));
  return v;
}

Value f_trim(const Value& v, const CallArgs& a, const CallSite&) {
  return Value(py_strip(v.str(), arg_string(a, 0, "chars"), true, true));
}

// transformers' tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
Value f_tojson(const Value& v, const CallArgs& a, const CallSite& site) {
  JsonStyle style;
  style.ensure_ascii = arg_bool(a, 0, "ensure_ascii", false);
  if (const Value* indent = a.get(1, "indent"); indent && !indent->is_none()) {
    if (!indent->is_int()) site.fail("tojson: indent must be an integer");
    style.indent = static_cast<int>(std::clamp<int64_t>(indent->as_int(), 0, 64));
    style.item_separator = ",";
  }
  if (const Value* seps = a.get(2, "separators"); seps && !seps->is_none()) {
    if (!seps->is_list() || seps->as_list().items.size() != 2) site.fail("tojson: separators must be a pair");
    style.item_separator = seps->as_list().items[0].str();
    style.key_separator = seps->as_list().items[1].str();
  }
  style.sort_keys = arg_bool(a, 3, "sort_keys", false);
  return Value(to_json_text(v, style, site));
}

Value f_length(const Value& v, const CallArgs&, const CallSite& site) { return Value(length_of(v, site)); }
Value f_upper(const Value& v, const CallArgs&, const CallSite&) { return Value(py_upper(v.str())); }
Value f_lower(const Value& v, const CallArgs&, const CallSite&) { return Value(py_lower(v.str())); }
Value f_capitalize(const Value& v, const CallArgs&, const CallSite&) { return Value(py_capitalize(v.str())); }
Value f_title(const Value& v, const CallArgs&, const CallSite&) { return Value(jinja_title(v.str())); }
Value f_string(const Value& v, const CallArgs&, const CallSite&) { return Value(v.str()); }
Value f_safe(const Value& v, const CallArgs&, const CallSite&) { return v; }
Value f_escape(const Value& v, const CallArgs&, const CallSite&) { return Value(html_escape(v.str())); }

Value f_default(const Value& v, const CallArgs& a, const CallSite&) {
  bool boolean = arg_bool(a, 1, "boolean", false);
  if (v.is_undefined() || (boolean && !v.truthy())) {
    const Value* d = a.get(0, "default_value");
    return d ? *d : Value(std::string());
  }
  return v;
}

Value f_first(const Value& v, const CallArgs&, const CallSite& site) {
  std::vector<Value> items = iterate(v, site);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value f_last(const Value& v, const CallArgs&, const CallSite& site) {
  std::vector<Value> items = iterate(v, site);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

Value f_join(const Value& v, const CallArgs& a, const CallSite& site) {
  std::string sep = arg_string(a, 0, "d").value_or("");
  std::optional<std::string> attribute = arg_string(a, 1, "attribute");
  std::string out;
  bool first = true;
  for (const Value& item : iterate(v, site)) {
    if (!first) out += sep;
    first = false;
    out += attribute ? attr_path(item, *attribute, site).str() : item.str();
    site.check_size(out.size());
  }
  return Value(std::move(out));
}

Value f_replace(const Value& v, const CallArgs& a, const CallSite& site) {
  const Value* from = a.get(0, "old");
  const Value* to = a.get(1, "new");
  if (!from || !to) site.fail("replace needs two arguments");
  const Value* count = a.get(2, "count");
  long n = count && !count->is_none() ? static_cast<long>(site.int_arg(*count, "count")) : -1;
  bool too_big = false;
  std::string out = py_replace(v.str(), from->str(), to->str(), n, site.limits->max_output_bytes, &too_big);
  if (too_big) site.check_size(site.limits->max_output_bytes + 1);
  return Value(std::move(out));
}

Value f_list(const Value& v, const CallArgs&, const CallSite& site) { return Value::list(iterate(v, site)); }

Value f_items(const Value& v, const CallArgs&, const CallSite& site) {
  if (v.is_undefined()) return Value::list({});
  if (!v.is_dict()) site.fail("TypeError: items filter needs a mapping, got " + v.type_repr());
  std::vector<Value> out;
  for (const auto& [k, val] : v.as_dict()->entries()) out.push_back(Value::list({Value(k), val}, true));
  return Value::list(std::move(out));
}

Value f_int(const Value& v, const CallArgs& a, const CallSite&) {
  const Value* d = a.get(0, "default");
  Value dflt = d ? *d : Value(int64_t{0});
  if (v.is_int() || v.is_bool()) return Value(v.as_int());
  if (v.is_float()) {
    double x = v.as_float();
    if (!std::isfinite(x) || std::fabs(x) > 9.2e18) return dflt;
    return Value(static_cast<int64_t>(x));
  }
  if (v.is_string()) {
    std::string s = py_strip(v.as_string(), std::nullopt, true, true);
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    if (s.empty()) return dflt;
    char* end = nullptr;
    errno = 0;
    long long i = std::strtoll(s.c_str(), &end, 10);
    if (*end == '\0' && errno == 0) return Value(static_cast<int64_t>(i));
    double x = std::strtod(s.c_str(), &end);
    if (*end == '\0' && std::isfinite(x) && std::fabs(x) < 9.2e18) return Value(static_cast<int64_t>(x));
  }
  return dflt;
}

Value f_float(const Value& v, const CallArgs& a, const CallSite&) {
  const Value* d = a.get(0, "default");
  Value dflt = d ? *d : Value(0.0);
  if (v.is_number()) return Value(v.as_float());
  if (v.is_string()) {
    std::string s = py_strip(v.as_string(), std::nullopt, true, true);
    char* end = nullptr;
    double x = std::strtod(s.c_str(), &end);
    if (!s.empty() && *end == '\0') return Value(x);
  }
  return dflt;
}

Value f_abs(const Value& v, const CallArgs&, const CallSite& site) {
  if (v.is_int() || v.is_bool()) {
    if (v.as_int() == INT64_MIN) site.fail("integer overflow");
    return Value(static_cast<int64_t>(std::llabs(v.as_int())));
  }
  if (v.is_float()) return Value(std::fabs(v.as_float()));
  site.fail("TypeError: bad operand type for abs(): " + v.type_repr());
}

Value f_round(const Value& v, const CallArgs& a, const CallSite& site) {
  const Value* p = a.get(0, "precision");
  int64_t precision = p ? site.int_arg(*p, "precision") : 0;
  std::string method = arg_string(a, 1, "method").value_or("common");
  if (!v.is_number()) site.fail("TypeError: round needs a number, got " + v.type_repr());
  if (!v.is_float() && method == "common") return Value(v.as_int());  // Python: round(7, 0) == 7
  double scale = std::pow(10.0, static_cast<double>(std::clamp<int64_t>(precision, -300, 300)));
  double x = v.as_float() * scale;
  if (method == "common") {
    x = std::nearbyint(x);  // default rounding mode: half to even, like Python's round()
  } else if (method == "ceil") {
    x = std::ceil(x);
  } else if (method == "floor") {
    x = std::floor(x);
  } else {
    site.fail("round: method must be common, ceil or floor");
  }
  return Value(x / scale);
}

Value f_indent(const Value& v, const CallArgs& a, const CallSite& site) {
  std::string pad;
  if (const Value* w = a.get(0, "width")) {
    pad = w->is_string() ? w->as_string() : std::string(static_cast<size_t>(std::clamp<int64_t>(site.int_arg(*w, "width"), 0, 1024)), ' ');
  } else {
    pad = "    ";
  }
  bool first = arg_bool(a, 1, "first", false);
  bool blank = arg_bool(a, 2, "blank", false);
  std::vector<std::string> lines = py_splitlines(v.str() + "\n");
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += "\n";
    if ((i > 0 || first) && (blank || !lines[i].empty())) out += pad;
    out += lines[i];
    site.check_size(out.size());
  }
  return Value(std::move(out));
}

Value select_common(const Value& v, const CallArgs& a, const CallSite& site, bool by_attr, bool keep_on) {
  size_t next = 0;
  std::optional<std::string> attribute;
  if (by_attr) {
    attribute = arg_string(a, next++, "attribute");
    if (!attribute) site.fail("selectattr/rejectattr need an attribute name");
  }
  std::optional<std::string> test;
  if (next < a.positional.size()) test = a.positional[next++].str();
  if (test && !is_known_test(*test)) site.fail("unsupported test '" + *test + "'");
  CallArgs test_args;
  for (size_t i = next; i < a.positional.size(); ++i) test_args.positional.push_back(a.positional[i]);
  std::vector<Value> out;
  for (const Value& item : iterate(v, site)) {
    Value subject = attribute ? attr_path(item, *attribute, site) : item;
    bool ok = test ? apply_test(*test, subject, test_args, site) : subject.truthy();
    if (ok == keep_on) out.push_back(item);
  }
  return Value::list(std::move(out));
}
Value f_selectattr(const Value& v, const CallArgs& a, const CallSite& s) { return select_common(v, a, s, true, true); }
Value f_rejectattr(const Value& v, const CallArgs& a, const CallSite& s) { return select_common(v, a, s, true, false); }
Value f_select(const Value& v, const CallArgs& a, const CallSite& s) { return select_common(v, a, s, false, true); }
Value f_reject(const Value& v, const CallArgs& a, const CallSite& s) { return select_common(v, a, s, false, false); }

Value f_map(const Value& v, const CallArgs& a, const CallSite& site) {
  std::vector<Value> out;
  if (std::optional<std::string> attribute = arg_string(a, 99, "attribute")) {
    const Value* dflt = a.get(99, "default");
    for (const Value& item : iterate(v, site)) {
      Value x = attr_path(item, *attribute, site);
      out.push_back(x.is_undefined() && dflt ? *dflt : x);
    }
    return Value::list(std::move(out));
  }
  if (a.positional.empty()) site.fail("map needs a filter name or attribute=");
  std::string filter = a.positional[0].str();
  if (!is_known_filter(filter)) site.fail("unsupported filter '" + filter + "'");
  CallArgs rest;
  rest.positional.assign(a.positional.begin() + 1, a.positional.end());
  rest.keyword = a.keyword;
  for (const Value& item : iterate(v, site)) out.push_back(apply_filter(filter, item, rest, site));
  return Value::list(std::move(out));
}

void stable_sort(std::vector<Value>& items, const std::function<Value(const Value&)>& key, bool reverse,
                 const CallSite& site) {
  std::vector<Value> keys;
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    keys.push_back(key(items[i]));
    order[i] = i;
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    int c = compare_values(keys[x], keys[y], site);
    return reverse ? c > 0 : c < 0;
  });
  std::vector<Value> sorted;
  for (size_t i : order) sorted.push_back(items[i]);
  items = std::move(sorted);
}

Value f_dictsort(const Value& v, const CallArgs& a, const CallSite& site) {
  Value pairs = f_items(v, {}, site);
  std::vector<Value> items = pairs.as_list().items;
  bool case_sensitive = arg_bool(a, 0, "case_sensitive", false);
  std::string by = arg_string(a, 1, "by").value_or("key");
  if (by != "key" && by != "value") site.fail("dictsort: by must be 'key' or 'value'");
  size_t pos = by == "key" ? 0 : 1;
  stable_sort(items, [&](const Value& p) { return sort_key(p.as_list().items[pos], case_sensitive); },
              arg_bool(a, 2, "reverse", false), site);
  return Value::list(std::move(items));
}

Value f_sort(const Value& v, const CallArgs& a, const CallSite& site) {
  std::vector<Value> items = iterate(v, site);
  bool case_sensitive = arg_bool(a, 1, "case_sensitive", false);
  std::optional<std::string> attribute = arg_string(a, 2, "attribute");
  stable_sort(items, [&](const Value& x) { return sort_key(attribute ? attr_path(x, *attribute, site) : x, case_sensitive); },
              arg_bool(a, 0, "reverse", false), site);
  return Value::list(std::move(items));
}

Value f_unique(const Value& v, const CallArgs& a, const CallSite& site) {
  bool case_sensitive = arg_bool(a, 0, "case_sensitive", false);
  std::optional<std::string> attribute = arg_string(a, 1, "attribute");
  std::vector<Value> out, seen;
  for (const Value& item : iterate(v, site)) {
    Value key = sort_key(attribute ? attr_path(item, *attribute, site) : item, case_sensitive);
    bool dup = false;
    for (const Value& s : seen) {
      if (values_equal(s, key)) {
        dup = true;
        break;
      }
    }
    if (!dup) {
      seen.push_back(key);
      out.push_back(item);
    }
  }
  return Value::list(std::move(out));
}

Value min_max(const Value& v, const CallArgs& a, const CallSite& site, bool want_max) {
  bool case_sensitive = arg_bool(a, 0, "case_sensitive", false);
  std::optional<std::string> attribute = arg_string(a, 1, "attribute");
  std::vector<Value> items = iterate(v, site);
  if (items.empty()) return Value::undefined(std::string("No aggregated item, sequence was empty."));
  size_t best = 0;
  Value best_key = sort_key(attribute ? attr_path(items[0], *attribute, site) : items[0], case_sensitive);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = sort_key(attribute ? attr_path(items[i], *attribute, site) : items[i], case_sensitive);
    int c = compare_values(k, best_key, site);
    if (want_max ? c > 0 : c < 0) {
      best = i;
      best_key = k;
    }
  }
  return items[best];
}
Value f_min(const Value& v, const CallArgs& a, const CallSite& s) { return min_max(v, a, s, false); }
Value f_max(const Value& v, const CallArgs& a, const CallSite& s) { return min_max(v, a, s, true); }

Value f_sum(const Value& v, const CallArgs& a, const CallSite& site) {
  std::optional<std::string> attribute = arg_string(a, 0, "attribute");
  const Value* start = a.get(1, "start");
  Value total = start ? *start : Value(int64_t{0});
  for (const Value& item : iterate(v, site)) {
    total = binary_op("+", total, attribute ? attr_path(item, *attribute, site) : item, site);
  }
  return total;
}

Value f_reverse(const Value& v, const CallArgs&, const CallSite& site) {
  if (v.is_string()) {
    std::vector<std::string> cs = utf8_chars(v.as_string());
    std::string out;
    for (auto it = cs.rbegin(); it != cs.rend(); ++it) out += *it;
    return Value(std::move(out));
  }
  std::vector<Value> items = iterate(v, site);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

Value f_attr(const Value& v, const CallArgs& a, const CallSite& site) {
  std::optional<std::string> name = arg_string(a, 0, "name");
  if (!name) site.fail("attr needs a name");
  return get_attr(v, *name, site);
}

Value f_wordcount(const Value& v, const CallArgs&, const CallSite&) {
  return Value(static_cast<int64_t>(py_split(v.str(), std::nullopt, -1).size()));
}

struct FilterEntry {
  std::string_view name;
  FilterFn fn;
};

constexpr FilterEntry kFilters[] = {
    {"trim", f_trim},         {"tojson", f_tojson},       {"length", f_length},       {"count", f_length},
    {"upper", f_upper},       {"lower", f_lower},         {"capitalize", f_capitalize}, {"title", f_title},
    {"default", f_default},   {"d", f_default},           {"first", f_first},         {"last", f_last},
    {"join", f_join},         {"replace", f_replace},     {"list", f_list},           {"items", f_items},
    {"string", f_string},     {"int", f_int},             {"float", f_float},         {"abs", f_abs},
    {"round", f_round},       {"indent", f_indent},       {"selectattr", f_selectattr}, {"rejectattr", f_rejectattr},
    {"select", f_select},     {"reject", f_reject},       {"map", f_map},             {"dictsort", f_dictsort},
    {"sort", f_sort},         {"unique", f_unique},       {"min", f_min},             {"max", f_max},
    {"sum", f_sum},           {"reverse", f_reverse},     {"safe", f_safe},           {"e", f_escape},
    {"escape", f_escape},     {"attr", f_attr},           {"wordcount", f_wordcount},
};

FilterFn find_filter(const std::string& name) {
  for (const auto& f : kFilters) {
    if (f.name == name) return f.fn;
  }
  return nullptr;
}

}  // namespace

bool is_known_filter(const std::string& name) { return find_filter(name) != nullptr; }

Value apply_filter(const std::string& name, const Value& value, const CallArgs& args, const CallSite& site) {
  FilterFn fn = find_filter(name);
  if (!fn) site.fail("unsupported filter '" + name + "'");
  return fn(value, args, site);
}

}  // namespace kr::jinja
