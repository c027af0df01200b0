#include "tokenizer/jinja/builtins.h"

#include <ctime>
#include <string_view>

#include "tokenizer/jinja/operators.h"

namespace kr::jinja {
namespace {

constexpr std::string_view kBuiltins[] = {"range", "namespace", "dict", "raise_exception", "strftime_now"};

int64_t int_arg(const Value& v, const CallSite& site) {
  if (!v.is_int() && !v.is_bool()) site.fail("TypeError: range() needs integers, got " + v.type_repr());
  return v.as_int();
}

Value range(const CallArgs& a, const CallSite& site) {
  const auto& p = a.positional;
  if (p.empty() || p.size() > 3) site.fail("TypeError: range expected 1 to 3 arguments");
  int64_t start = 0, stop = 0, step = 1;
  if (p.size() == 1) {
    stop = int_arg(p[0], site);
  } else {
    start = int_arg(p[0], site);
    stop = int_arg(p[1], site);
    if (p.size() == 3) step = int_arg(p[2], site);
  }
  if (step == 0) site.fail("ValueError: range() arg 3 must not be zero");
  // Count in floating point to avoid overflow, then bound it before allocating.
  double count_f = (static_cast<double>(stop) - static_cast<double>(start)) / static_cast<double>(step);
  if (count_f > static_cast<double>(site.limits->max_loop_iterations)) {
    throw LimitError("range() longer than the loop limit of " + std::to_string(site.limits->max_loop_iterations),
                     site.line);
  }
  std::vector<Value> items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) items.emplace_back(i);
  return Value::list(std::move(items));
}

Value make_dict(const CallArgs& a, const CallSite& site, bool is_namespace, std::vector<DictPtr>* owned) {
  Value d = Value::dict();
  d.as_dict()->is_namespace = is_namespace;
  if (a.positional.size() > 1) site.fail("TypeError: expected at most 1 positional argument");
  if (!a.positional.empty()) {
    if (!a.positional[0].is_dict()) site.fail("TypeError: expected a mapping, got " + a.positional[0].type_repr());
    for (const auto& [k, v] : a.positional[0].as_dict()->entries()) d.as_dict()->set(k, v);
  }
  for (const auto& [k, v] : a.keyword) d.as_dict()->set(k, v);
  if (is_namespace) owned->push_back(d.as_dict());
  return d;
}

Value strftime_now(const CallArgs& a, const CallSite& site) {
  const Value* fmt = a.get(0, "format");
  if (!fmt || !fmt->is_string()) site.fail("TypeError: strftime_now needs a format string");
  if (fmt->as_string().size() > 256) site.fail("strftime_now: format too long");
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);  // transformers uses datetime.now(): local time
  char buf[1024];
  size_t n = std::strftime(buf, sizeof(buf), fmt->as_string().c_str(), &local);
  return Value(std::string(buf, n));
}

}  // namespace

bool is_builtin_function(const std::string& name) {
  for (std::string_view b : kBuiltins) {
    if (b == name) return true;
  }
  return false;
}

Value call_builtin(const std::string& name, const CallArgs& args, const CallSite& site,
                   std::vector<DictPtr>* owned_namespaces) {
  if (name == "range") return range(args, site);
  if (name == "namespace") return make_dict(args, site, true, owned_namespaces);
  if (name == "dict") return make_dict(args, site, false, owned_namespaces);
  if (name == "raise_exception") {
    const Value* msg = args.get(0, "message");
    throw TemplateError(msg ? msg->str() : std::string("raise_exception called"), 0);
  }
  if (name == "strftime_now") return strftime_now(args, site);
  site.fail("unknown function '" + name + "'");
}

}  // namespace kr::jinja
