// Value: the dynamic type of the template language (Python's object model in
// miniature: undefined, None, bool, int, float, str, list/tuple, dict, callable).
// Lists and dicts are shared by pointer, as Python objects are; the sandbox that
// transformers uses forbids mutating them, so sharing is safe. A Value belongs to
// one render (one thread); values are never shared across renders.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace kr::jinja {

class Value;
struct List;
class Dict;
struct Stmt;

// Builtin functions are named; macros point into the (immutable) parsed template.
struct Callable {
  std::string name;
  const Stmt* macro = nullptr;  // null for a builtin function
};

struct Undefined {
  std::string hint;  // why it is undefined, e.g. "'foo' is undefined"
};
struct None {};

using ListPtr = std::shared_ptr<List>;
using DictPtr = std::shared_ptr<Dict>;
using CallablePtr = std::shared_ptr<const Callable>;

class Value {
 public:
  enum class Type { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kCallable };

  Value() : v_(Undefined{}) {}
  static Value undefined(std::string hint) { Value v; v.v_ = Undefined{std::move(hint)}; return v; }
  static Value none() { Value v; v.v_ = None{}; return v; }
  Value(bool b) : v_(b) {}                        // NOLINT
  Value(int64_t i) : v_(i) {}                     // NOLINT
  Value(int i) : v_(static_cast<int64_t>(i)) {}  // NOLINT
  Value(double d) : v_(d) {}                      // NOLINT
  Value(std::string s) : v_(std::move(s)) {}      // NOLINT
  Value(const char* s) : v_(std::string(s)) {}    // NOLINT
  Value(ListPtr l) : v_(std::move(l)) {}          // NOLINT
  Value(DictPtr d) : v_(std::move(d)) {}          // NOLINT
  Value(CallablePtr c) : v_(std::move(c)) {}      // NOLINT
  static Value list(std::vector<Value> items, bool is_tuple = false);
  static Value dict();

  Type type() const { return static_cast<Type>(v_.index()); }
  bool is_undefined() const { return type() == Type::kUndefined; }
  bool is_none() const { return type() == Type::kNone; }
  bool is_bool() const { return type() == Type::kBool; }
  bool is_int() const { return type() == Type::kInt; }
  bool is_float() const { return type() == Type::kFloat; }
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return type() == Type::kString; }
  bool is_list() const { return type() == Type::kList; }
  bool is_dict() const { return type() == Type::kDict; }
  bool is_callable() const { return type() == Type::kCallable; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return is_bool() ? (as_bool() ? 1 : 0) : std::get<int64_t>(v_); }
  double as_float() const { return is_float() ? std::get<double>(v_) : static_cast<double>(as_int()); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const List& as_list() const { return *std::get<ListPtr>(v_); }
  const DictPtr& as_dict() const { return std::get<DictPtr>(v_); }
  const Callable& as_callable() const { return *std::get<CallablePtr>(v_); }
  const std::string& undefined_hint() const { return std::get<Undefined>(v_).hint; }

  // Python truthiness (undefined is falsy).
  bool truthy() const;
  // Python str(): what {{ value }} prints. Undefined prints as "".
  std::string str() const;
  // Python repr(), used inside str() of lists and dicts.
  std::string repr() const;
  // "list object", "str object", ... as Jinja names types in its messages.
  std::string type_repr() const;

 private:
  std::variant<Undefined, None, bool, int64_t, double, std::string, ListPtr, DictPtr, CallablePtr> v_;
};

// List and Dict hold Values, so they follow Value: std::pair<std::string, Value> needs
// a complete Value (clang rejects the incomplete type with libstdc++; g++ accepts it).
struct List {
  std::vector<Value> items;
  bool is_tuple = false;  // only changes how it prints: (a, b) vs [a, b]
};

// Insertion-ordered dict with string keys (Python dicts keep insertion order,
// and tojson must print keys in that order).
class Dict {
 public:
  bool is_namespace = false;  // namespace() objects accept `set ns.attr = ...`
  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value value);
  const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  void clear();

 private:
  std::vector<std::pair<std::string, Value>> entries_;
  // Built once the dict grows past a few keys, so lookups stay O(1) on big dicts.
  std::unordered_map<std::string, size_t> index_;
};

inline Value Value::dict() { return Value(std::make_shared<Dict>()); }

// Python ==, including 1 == 1.0 == True and element-wise list/dict equality.
bool values_equal(const Value& a, const Value& b);

// Python's float repr: shortest round-trip digits, "1.0", "1e+16", "inf", "nan".
std::string float_repr(double d);

// UTF-8 helpers: strings index and measure by code point, as Python str does.
std::vector<std::string> utf8_chars(const std::string& s);
size_t utf8_length(const std::string& s);

}  // namespace kr::jinja
