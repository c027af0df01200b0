#include "tokenizer/jinja/from_json.h"

#include <nlohmann/json.hpp>

#include "tokenizer/jinja/error.h"

namespace kr::jinja {
namespace {

constexpr int kMaxDepth = 512;  // deeper input would risk the stack

template <typename Json>
Value convert(const Json& j, int depth = 0) {
  if (depth > kMaxDepth) throw TemplateError("context JSON nested too deeply", 0);
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::none();
    case nlohmann::json::value_t::boolean: return Value(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return Value(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      uint64_t u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float: return Value(j.template get<double>());
    case nlohmann::json::value_t::string: return Value(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(convert(e, depth + 1));
      return Value::list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      Value d = Value::dict();
      for (auto it = j.begin(); it != j.end(); ++it) d.as_dict()->set(it.key(), convert(it.value(), depth + 1));
      return d;
    }
    default: return Value::none();  // binary / discarded: not produced by the JSON parser
  }
}

}  // namespace

Value from_json(const nlohmann::json& j) { return convert(j); }
Value from_json(const nlohmann::ordered_json& j) { return convert(j); }

}  // namespace kr::jinja
