// Python semantics of the template operators, shared by the interpreter and the
// filters (sum, sort, min, max). All throw TemplateError on a type error.
#pragma once

#include <string>

#include "tokenizer/jinja/call_site.h"
#include "tokenizer/jinja/value.h"

namespace kr::jinja {

// op is one of + - * / // % ** ~ == != < <= > >= in "not in".
Value binary_op(const std::string& op, const Value& a, const Value& b, const CallSite& site);
// <0, 0, >0 like Python's ordering of numbers, strings and lists; throws otherwise.
int compare_values(const Value& a, const Value& b, const CallSite& site);
bool contains(const Value& container, const Value& item, const CallSite& site);
// Items of an iterable (list, tuple, dict keys, string characters; undefined is empty).
std::vector<Value> iterate(const Value& v, const CallSite& site);
// Python's len().
int64_t length_of(const Value& v, const CallSite& site);
// obj.name / obj[key] as Jinja resolves them; undefined (with a hint) when missing.
Value get_attr(const Value& obj, const std::string& name, const CallSite& site);
Value get_item(const Value& obj, const Value& key, const CallSite& site);
// obj[start:stop:step] on lists, tuples and strings (by code point).
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step, const CallSite& site);
// Throws Jinja's UndefinedError for an undefined used where a value is required.
[[noreturn]] void fail_undefined(const Value& v, const CallSite& site);

}  // namespace kr::jinja
