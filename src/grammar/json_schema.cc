#include "grammar/json_schema.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "grammar/number_ranges.h"
#include "grammar/regex_parser.h"
#include "grammar/utf8.h"

namespace kr::grammar {

namespace {

using Json = nlohmann::ordered_json;

// ---------------------------------------------------------------------------
// Shared JSON pieces.
class JsonPieces {
 public:
  JsonPieces(Grammar& g, const JsonSchemaOptions& o) : g_(g), o_(o) {}

  ExprId ws() {
    if (ws_ == kNoExpr) {
      if (!o_.whitespace) {
        ws_ = g_.empty();
      } else {
        ByteSet blank;
        blank.set(' ');
        blank.set('\t');
        ws_ = g_.alt({g_.empty(), g_.byte(' '),
                      g_.seq({g_.byte('\n'), g_.repeat(g_.bytes(blank), 0, o_.max_indent)})});
      }
    }
    return ws_;
  }
  // One character of a JSON string body: raw (not '"', '\\', control) or a
  // two-character escape. \uXXXX is never generated (a valid subset: every
  // character has another spelling but the controls without a short escape,
  // which are left out); one escape is one character for minLength/maxLength.
  ExprId json_char() {
    if (char_ == kNoExpr) {
      ExprId raw = codepoint_class_expr(g_, normalize_ranges({{0x20, 0x21}, {0x23, 0x5B}, {0x5D, kMaxCodepoint}}));
      ByteSet simple;
      for (char c : std::string("\"\\/bfnrt")) simple.set(static_cast<uint8_t>(c));
      char_ = g_.alt({raw, g_.seq({g_.byte('\\'), g_.bytes(simple)})});
    }
    return char_;
  }
  ExprId quoted(ExprId body) { return g_.seq({g_.byte('"'), body, g_.byte('"')}); }
  ExprId string() {
    if (string_ == kNoExpr) string_ = quoted(g_.star(json_char()));
    return string_;
  }
  ExprId integer() {
    if (integer_ == kNoExpr) {
      integer_ = g_.seq({g_.optional(g_.byte('-')),
                         g_.alt({g_.byte('0'), g_.seq({g_.bytes(ByteSet::range('1', '9')), digits(0, 18)})})});
    }
    return integer_;
  }
  ExprId number() {
    if (number_ == kNoExpr) {
      ByteSet e;
      e.set('e');
      e.set('E');
      ByteSet sign;
      sign.set('+');
      sign.set('-');
      number_ = g_.seq({g_.optional(g_.byte('-')),
                        g_.alt({g_.byte('0'), g_.seq({g_.bytes(ByteSet::range('1', '9')), digits(0, 15)})}),
                        g_.optional(g_.seq({g_.byte('.'), digits(1, 15)})),
                        g_.optional(g_.seq({g_.bytes(e), g_.optional(g_.bytes(sign)), digits(1, 2)}))});
    }
    return number_;
  }
  ExprId digits(uint32_t min, uint32_t max) { return g_.repeat(g_.bytes(ByteSet::range('0', '9')), min, max); }
  ExprId boolean() { return g_.alt({g_.literal("true"), g_.literal("false")}); }
  ExprId null() { return g_.literal("null"); }

  // { ws (key ":" ws value ("," ws key ":" ws value)* ws)? }
  ExprId object_of(ExprId key, ExprId value) {
    ExprId kv = g_.seq({key, g_.byte(':'), ws(), value});
    ExprId more = g_.star(g_.seq({g_.byte(','), ws(), kv}));
    return g_.seq({g_.byte('{'), ws(), g_.optional(g_.seq({kv, more, ws()})), g_.byte('}')});
  }
  // [ ws (item ("," ws item){min-1,max-1} ws)? ]
  ExprId array_of(ExprId item, uint32_t min, uint32_t max) {
    if (max == 0) return g_.seq({g_.byte('['), ws(), g_.byte(']')});
    uint32_t rmin = min == 0 ? 0 : min - 1;
    uint32_t rmax = max == kUnbounded ? kUnbounded : max - 1;
    ExprId body = g_.seq({item, g_.repeat(g_.seq({g_.byte(','), ws(), item}), rmin, rmax), ws()});
    return g_.seq({g_.byte('['), ws(), min == 0 ? g_.optional(body) : body, g_.byte(']')});
  }
  // Rule "json-value": any JSON value.
  ExprId any_value() {
    if (value_rule_ < 0) {
      value_rule_ = static_cast<int32_t>(g_.add_rule("json--value"));
      ExprId self = g_.rule_ref(static_cast<uint32_t>(value_rule_));
      g_.set_rule_body(static_cast<uint32_t>(value_rule_),
                       g_.alt({object_of(string(), self), array_of(self, 0, kUnbounded), string(), number(),
                               boolean(), null()}));
    }
    return g_.rule_ref(static_cast<uint32_t>(value_rule_));
  }

 private:
  Grammar& g_;
  const JsonSchemaOptions& o_;
  ExprId ws_ = kNoExpr, char_ = kNoExpr, string_ = kNoExpr, integer_ = kNoExpr, number_ = kNoExpr;
  int32_t value_rule_ = -1;
};

// ---------------------------------------------------------------------------
const std::set<std::string, std::less<>> kAnnotations = {
    "title",    "description", "default",       "examples",        "$schema", "$id",
    "$comment", "deprecated",  "readOnly",      "writeOnly",       "nullable", "discriminator",
    "$anchor",  "$defs",       "definitions",   "contentEncoding", "contentMediaType"};

const std::set<std::string, std::less<>> kObjectKeys = {"properties",    "required",      "additionalProperties",
                                                        "minProperties", "maxProperties", "unevaluatedProperties"};
const std::set<std::string, std::less<>> kArrayKeys = {"items", "prefixItems", "additionalItems", "minItems",
                                                       "maxItems", "uniqueItems"};
const std::set<std::string, std::less<>> kStringKeys = {"minLength", "maxLength", "pattern", "format"};
const std::set<std::string, std::less<>> kNumberKeys = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                                                        "multipleOf"};
const std::set<std::string, std::less<>> kCombiners = {"$ref", "anyOf", "allOf", "oneOf", "enum", "const", "type"};

bool is_annotation(const std::string& k) { return kAnnotations.count(k) || k.rfind("x-", 0) == 0; }
bool is_known(const std::string& k) {
  return is_annotation(k) || kObjectKeys.count(k) || kArrayKeys.count(k) || kStringKeys.count(k) ||
         kNumberKeys.count(k) || kCombiners.count(k);
}

std::string escape_pointer_token(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

// JSON text of a value as the grammar emits it (compact).
std::string compact(const Json& v) { return v.dump(-1, ' ', false, Json::error_handler_t::strict); }

const char* const kYear = "(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})";
const char* const kMonthDay =
    "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))";
const char* const kLeapYear = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)";
const char* const kTime = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6})?";
const char* const kOffset = "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])";
const char* const kLabel = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const char* const kPchar = "(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})";

std::optional<std::string> format_regex(const std::string& f) {
  std::string date = std::string("(?:") + kYear + "-" + kMonthDay + "|" + kLeapYear + "-02-29)";
  if (f == "date") return date;
  if (f == "time") return std::string(kTime) + kOffset;
  if (f == "date-time") return date + "T" + kTime + kOffset;
  if (f == "uuid") {
    return "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
  }
  if (f == "email") {
    return "[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+";
  }
  if (f == "ipv4") {
    std::string octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    return "(?:" + octet + "\\.){3}" + octet;
  }
  if (f == "ipv6") return "(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}";
  if (f == "hostname") return std::string(kLabel) + "(?:\\." + kLabel + ")*";
  if (f == "uri") {
    std::string host = std::string(kLabel) + "(?:\\." + kLabel + ")*";
    return "(?:https?|ftp)://" + host + "(?::[0-9]{1,5})?(?:/" + kPchar + "*)*(?:\\?(?:" + kPchar +
           "|[/?])*)?(?:#(?:" + kPchar + "|[/?])*)?";
  }
  return std::nullopt;
}

enum TypeBit : uint32_t {
  kTObject = 1,
  kTArray = 2,
  kTString = 4,
  kTNumber = 8,
  kTInteger = 16,
  kTBoolean = 32,
  kTNull = 64,
  kTAll = 127,
};

uint32_t type_bit(const std::string& t) {
  if (t == "object") return kTObject;
  if (t == "array") return kTArray;
  if (t == "string") return kTString;
  if (t == "number") return kTNumber;
  if (t == "integer") return kTInteger;
  if (t == "boolean") return kTBoolean;
  if (t == "null") return kTNull;
  return 0;
}

uint32_t value_type(const Json& v) {
  if (v.is_object()) return kTObject;
  if (v.is_array()) return kTArray;
  if (v.is_string()) return kTString;
  if (v.is_boolean()) return kTBoolean;
  if (v.is_null()) return kTNull;
  if (v.is_number_integer() || v.is_number_unsigned()) return kTInteger | kTNumber;
  if (v.is_number_float()) {
    double d = v.get<double>();
    return d == static_cast<double>(static_cast<int64_t>(d)) ? (kTInteger | kTNumber) : kTNumber;
  }
  return 0;
}

// ---------------------------------------------------------------------------
class SchemaCompiler {
 public:
  SchemaCompiler(const Json& root, Grammar& g, const JsonSchemaOptions& o) : root_(root), g_(g), o_(o), json_(g, o) {}

  // The root schema; "#" refers to it (recursion through the root).
  StatusOr<ExprId> compile_root() {
    in_progress_.insert("#");
    auto e = compile(root_, "", 0);
    in_progress_.erase("#");
    if (!e.ok()) return e.status();
    auto rule = rules_.find("#");
    if (rule != rules_.end()) {
      g_.set_rule_body(rule->second, *e);
      return g_.rule_ref(rule->second);
    }
    return *e;
  }

  StatusOr<ExprId> compile(const Json& s, const std::string& path, uint32_t depth) {
    if (depth > o_.max_depth * 4) return error(path, "schema nests too deeply (through $ref)");
    if (s.is_boolean()) return s.get<bool>() ? json_.any_value() : g_.nothing();
    if (!s.is_object()) return error(path, "a schema must be an object or a boolean");
    for (auto it = s.begin(); it != s.end(); ++it) {
      if (!is_known(it.key())) {
        return InvalidArgument("unsupported JSON Schema keyword '" + it.key() + "' at " + where(path));
      }
    }
    if (s.contains("$ref")) {
      for (auto it = s.begin(); it != s.end(); ++it) {
        if (it.key() != "$ref" && !is_annotation(it.key())) {
          return InvalidArgument("keyword '" + it.key() + "' beside $ref is not supported at " + where(path));
        }
      }
      return compile_ref(s["$ref"], path, depth);
    }
    if (s.contains("allOf")) {
      auto merged = merge_all_of(s, path, depth);
      if (!merged.ok()) return merged.status();
      return compile(*merged, path, depth + 1);
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (!s.contains(key)) continue;
      const Json& branches = s[key];
      if (!branches.is_array() || branches.empty()) return error(path, std::string(key) + " must be a non-empty array");
      Json siblings = Json::object();
      for (auto it = s.begin(); it != s.end(); ++it) {
        if (it.key() != key && !is_annotation(it.key())) siblings[it.key()] = it.value();
      }
      if (std::string(key) == "oneOf") KR_RETURN_IF_ERROR(check_disjoint(branches, path));
      std::vector<ExprId> alts;
      for (size_t i = 0; i < branches.size(); ++i) {
        std::string bpath = path + "/" + key + "/" + std::to_string(i);
        if (siblings.empty()) {
          auto e = compile(branches[i], bpath, depth + 1);
          if (!e.ok()) return e.status();
          alts.push_back(*e);
        } else {
          Json combined = {{"allOf", Json::array({siblings, branches[i]})}};
          auto e = compile(combined, bpath, depth + 1);
          if (!e.ok()) return e.status();
          alts.push_back(*e);
        }
      }
      return g_.alt(alts);
    }
    if (s.contains("enum") || s.contains("const")) return compile_enum(s, path);
    return compile_types(s, path, depth);
  }

 private:
  static std::string where(const std::string& path) { return path.empty() ? "the schema root" : path; }
  static Status error(const std::string& path, const std::string& what) {
    return InvalidArgument("invalid schema at " + where(path) + ": " + what);
  }

  // ---- $ref ----
  StatusOr<const Json*> resolve(const std::string& ref, const std::string& path) {
    if (ref.empty() || ref[0] != '#') {
      return InvalidArgument("only local $ref ('#...') is supported, got '" + ref + "' at " + where(path));
    }
    const Json* cur = &root_;
    size_t i = 1;
    if (i < ref.size() && ref[i] != '/') {
      return InvalidArgument("$ref '" + ref + "' is not a JSON pointer (anchors are not supported) at " + where(path));
    }
    while (i < ref.size()) {
      size_t j = ref.find('/', i + 1);
      if (j == std::string::npos) j = ref.size();
      std::string tok;
      for (size_t k = i + 1; k < j; ++k) {
        char c = ref[k];
        if (c == '~' && k + 1 < j && (ref[k + 1] == '0' || ref[k + 1] == '1')) {
          tok += ref[k + 1] == '0' ? '~' : '/';
          ++k;
        } else if (c == '%' && k + 2 < j && isxdigit(static_cast<unsigned char>(ref[k + 1])) &&
                   isxdigit(static_cast<unsigned char>(ref[k + 2]))) {
          tok += static_cast<char>(std::stoi(ref.substr(k + 1, 2), nullptr, 16));
          k += 2;
        } else {
          tok += c;
        }
      }
      if (cur->is_object() && cur->contains(tok)) {
        cur = &(*cur)[tok];
      } else if (cur->is_array() && !tok.empty() && tok.find_first_not_of("0123456789") == std::string::npos &&
                 tok.size() < 9 && std::stoul(tok) < cur->size()) {
        cur = &(*cur)[std::stoul(tok)];
      } else {
        return InvalidArgument("$ref '" + ref + "' does not resolve at " + where(path));
      }
      i = j;
    }
    return cur;
  }

  StatusOr<ExprId> compile_ref(const Json& refv, const std::string& path, uint32_t depth) {
    if (!refv.is_string()) return error(path, "$ref must be a string");
    const std::string ref = refv.get<std::string>();
    auto target = resolve(ref, path);
    if (!target.ok()) return target.status();
    auto rule = rules_.find(ref);
    if (rule != rules_.end()) return g_.rule_ref(rule->second);
    if (in_progress_.count(ref)) {
      // Recursion: the target becomes a rule; its body is set when done.
      uint32_t r = g_.add_rule("json--ref-" + std::to_string(g_.rules().size()));
      rules_.emplace(ref, r);
      return g_.rule_ref(r);
    }
    auto memo = memo_.find(ref);
    if (memo != memo_.end()) {
      if (size_of(memo->second) > kInlineLimit) {
        uint32_t r = g_.add_rule("json--ref-" + std::to_string(g_.rules().size()));
        g_.set_rule_body(r, memo->second);
        rules_.emplace(ref, r);
        return g_.rule_ref(r);
      }
      return memo->second;
    }
    in_progress_.insert(ref);
    auto e = compile(**target, ref.substr(1), depth + 1);
    in_progress_.erase(ref);
    if (!e.ok()) return e.status();
    rule = rules_.find(ref);
    if (rule != rules_.end()) {
      g_.set_rule_body(rule->second, *e);
      return g_.rule_ref(rule->second);
    }
    memo_.emplace(ref, *e);
    return *e;
  }

  // ---- allOf: merged into one schema ----
  StatusOr<Json> deref(const Json& s, const std::string& path, int hops = 0) {
    if (s.is_object() && s.contains("$ref")) {
      if (hops > 32) return error(path, "$ref chain too long");
      const std::string ref = s["$ref"].is_string() ? s["$ref"].get<std::string>() : "";
      if (in_progress_.count(ref)) {
        return InvalidArgument("allOf over a recursive $ref is not supported at " + where(path));
      }
      auto t = resolve(ref, path);
      if (!t.ok()) return t.status();
      Json out = **t;
      if (out.is_boolean()) return out;
      for (auto it = s.begin(); it != s.end(); ++it) {
        if (it.key() != "$ref") out[it.key()] = it.value();
      }
      return deref(out, path, hops + 1);
    }
    return s;
  }

  // allOf becomes one schema. additionalProperties:false in a part admits only
  // the properties declared beside it, so the merged object may only have
  // the keys every such part declares.
  StatusOr<Json> merge_all_of(const Json& s, const std::string& path, uint32_t depth) {
    const Json& parts = s["allOf"];
    if (!parts.is_array() || parts.empty()) return error(path, "allOf must be a non-empty array");
    Json acc = Json::object();
    std::optional<std::set<std::string>> allowed;
    auto restrict_keys = [&](const Json& part, const std::string& where_path) -> Status {
      if (!part.contains("additionalProperties")) return Status::Ok();
      const Json& a = part["additionalProperties"];
      if (a.is_boolean() && a.get<bool>()) return Status::Ok();
      if (!a.is_boolean()) {
        return InvalidArgument("additionalProperties with a schema inside allOf is not supported at " + where(where_path));
      }
      std::set<std::string> keys;
      if (part.contains("properties") && part["properties"].is_object()) {
        for (auto it = part["properties"].begin(); it != part["properties"].end(); ++it) keys.insert(it.key());
      }
      if (allowed) {
        std::set<std::string> both;
        for (const auto& k : keys) {
          if (allowed->count(k)) both.insert(k);
        }
        allowed = both;
      } else {
        allowed = keys;
      }
      return Status::Ok();
    };
    for (auto it = s.begin(); it != s.end(); ++it) {
      if (it.key() != "allOf" && it.key() != "additionalProperties") acc[it.key()] = it.value();
    }
    KR_RETURN_IF_ERROR(restrict_keys(s, path));
    for (size_t i = 0; i < parts.size(); ++i) {
      const std::string ppath = path + "/allOf/" + std::to_string(i);
      auto part = deref(parts[i], ppath);
      if (!part.ok()) return part.status();
      Json p = *part;
      if (p.is_boolean()) {
        if (!p.get<bool>()) return Json(false);
        continue;
      }
      if (!p.is_object()) return error(path, "allOf entries must be schemas");
      if (p.contains("allOf")) {
        auto inner = merge_all_of(p, ppath, depth + 1);
        if (!inner.ok()) return inner.status();
        p = *inner;
        if (p.is_boolean()) {
          if (!p.get<bool>()) return Json(false);
          continue;
        }
      }
      if (p.contains("unevaluatedProperties")) {
        return InvalidArgument("unevaluatedProperties inside allOf is not supported at " + where(ppath));
      }
      KR_RETURN_IF_ERROR(restrict_keys(p, ppath));
      p.erase("additionalProperties");
      KR_RETURN_IF_ERROR(merge_into(acc, p, path));
    }
    if (allowed) {
      if (acc.contains("required") && acc["required"].is_array()) {
        for (const auto& r : acc["required"]) {
          if (r.is_string() && !allowed->count(r.get<std::string>())) {
            return InvalidArgument("no object satisfies the allOf at " + where(path) + ": required property '" +
                                   r.get<std::string>() + "' is excluded by additionalProperties:false");
          }
        }
      }
      if (acc.contains("properties") && acc["properties"].is_object()) {
        Json kept = Json::object();
        for (auto it = acc["properties"].begin(); it != acc["properties"].end(); ++it) {
          if (allowed->count(it.key())) kept[it.key()] = it.value();
        }
        acc["properties"] = kept;
      }
      acc["additionalProperties"] = false;
    }
    return acc;
  }

  Status merge_into(Json& acc, const Json& p, const std::string& path) {
    for (auto it = p.begin(); it != p.end(); ++it) {
      const std::string& k = it.key();
      const Json& v = it.value();
      if (!acc.contains(k)) {
        acc[k] = v;
        continue;
      }
      Json& a = acc[k];
      if (a == v || is_annotation(k)) continue;
      if (k == "required" && a.is_array() && v.is_array()) {
        for (const auto& x : v) {
          if (std::find(a.begin(), a.end(), x) == a.end()) a.push_back(x);
        }
      } else if (k == "properties" && a.is_object() && v.is_object()) {
        for (auto pit = v.begin(); pit != v.end(); ++pit) {
          if (!a.contains(pit.key())) {
            a[pit.key()] = pit.value();
          } else if (a[pit.key()] != pit.value()) {
            a[pit.key()] = Json{{"allOf", Json::array({a[pit.key()], pit.value()})}};
          }
        }
      } else if (k == "type") {
        uint32_t ta = types_of(a), tv = types_of(v);
        uint32_t both = ta & tv;
        if ((ta & kTNumber) && (tv & kTInteger)) both |= kTInteger;
        if ((tv & kTNumber) && (ta & kTInteger)) both |= kTInteger;
        Json list = Json::array();
        for (const char* t : {"object", "array", "string", "number", "integer", "boolean", "null"}) {
          if (both & type_bit(t)) list.push_back(t);
        }
        if (list.empty()) return error(path, "allOf combines types that no value has");
        a = list;
      } else if (k == "minimum" || k == "minLength" || k == "minItems" || k == "exclusiveMinimum") {
        if (a.is_number() && v.is_number()) a = std::max(a.get<double>(), v.get<double>()) == v.get<double>() ? v : a;
        else return conflict(k, path);
      } else if (k == "maximum" || k == "maxLength" || k == "maxItems" || k == "exclusiveMaximum") {
        if (a.is_number() && v.is_number()) a = std::min(a.get<double>(), v.get<double>()) == v.get<double>() ? v : a;
        else return conflict(k, path);
      } else if (k == "enum" && a.is_array() && v.is_array()) {
        Json both = Json::array();
        for (const auto& x : a) {
          if (std::find(v.begin(), v.end(), x) != v.end()) both.push_back(x);
        }
        a = both;
      } else if (k == "additionalProperties" && (a == false || v == false)) {
        a = false;
      } else if (k == "$defs" || k == "definitions") {
        continue;
      } else {
        return conflict(k, path);
      }
    }
    return Status::Ok();
  }
  static Status conflict(const std::string& k, const std::string& path) {
    return InvalidArgument("allOf with two different '" + k + "' values is not supported at " + where(path));
  }
  static uint32_t types_of(const Json& t) {
    uint32_t bits = 0;
    if (t.is_string()) bits = type_bit(t.get<std::string>());
    if (t.is_array()) {
      for (const auto& x : t) {
        if (x.is_string()) bits |= type_bit(x.get<std::string>());
      }
    }
    if (bits & kTNumber) bits |= kTInteger;
    return bits;
  }

  // ---- oneOf: accepted only when no value can match two branches ----
  // A branch's possible types, and the const values its objects must carry.
  uint32_t branch_types(const Json& b, int hops = 0) {
    if (b.is_boolean()) return b.get<bool>() ? static_cast<uint32_t>(kTAll) : 0u;
    if (!b.is_object()) return static_cast<uint32_t>(kTAll);
    if (b.contains("$ref") && hops < 16) {
      auto t = resolve(b["$ref"].is_string() ? b["$ref"].get<std::string>() : "", "");
      return t.ok() ? branch_types(**t, hops + 1) : kTAll;
    }
    if (b.contains("const")) return value_type(b["const"]);
    if (b.contains("enum") && b["enum"].is_array()) {
      uint32_t bits = 0;
      for (const auto& v : b["enum"]) bits |= value_type(v);
      return bits;
    }
    if (b.contains("type")) return types_of(b["type"]);
    return kTAll;
  }
  std::map<std::string, Json> discriminators(const Json& b, int hops = 0) {
    std::map<std::string, Json> out;
    if (!b.is_object()) return out;
    if (b.contains("$ref") && hops < 16) {
      auto t = resolve(b["$ref"].is_string() ? b["$ref"].get<std::string>() : "", "");
      return t.ok() ? discriminators(**t, hops + 1) : out;
    }
    if (!b.contains("properties") || !b.contains("required") || !b["required"].is_array()) return out;
    for (const auto& r : b["required"]) {
      if (!r.is_string() || !b["properties"].contains(r.get<std::string>())) continue;
      const Json& ps = b["properties"][r.get<std::string>()];
      if (!ps.is_object()) continue;
      if (ps.contains("const")) out[r.get<std::string>()] = ps["const"];
      if (ps.contains("enum") && ps["enum"].is_array() && ps["enum"].size() == 1) out[r.get<std::string>()] = ps["enum"][0];
    }
    return out;
  }
  Status check_disjoint(const Json& branches, const std::string& path) {
    for (size_t i = 0; i < branches.size(); ++i) {
      for (size_t j = i + 1; j < branches.size(); ++j) {
        uint32_t a = branch_types(branches[i]), b = branch_types(branches[j]);
        if ((a & b) == 0) continue;
        const Json& bi = branches[i];
        const Json& bj = branches[j];
        if (bi.is_object() && bj.is_object() && bi.contains("const") && bj.contains("const") && bi["const"] != bj["const"]) {
          continue;
        }
        if ((a & b) == kTObject || ((a & b) & ~kTObject) == 0) {
          auto di = discriminators(bi), dj = discriminators(bj);
          bool disjoint = false;
          for (auto& [k, v] : di) {
            auto it = dj.find(k);
            if (it != dj.end() && it->second != v) disjoint = true;
          }
          if (disjoint) continue;
        }
        return InvalidArgument("oneOf at " + where(path) + " is supported only when its branches cannot match the "
                               "same value (different types, or objects told apart by a required const property); "
                               "branches " + std::to_string(i) + " and " + std::to_string(j) + " may overlap");
      }
    }
    return Status::Ok();
  }

  // ---- enum / const ----
  StatusOr<ExprId> compile_enum(const Json& s, const std::string& path) {
    std::vector<Json> values;
    if (s.contains("const")) values.push_back(s["const"]);
    if (s.contains("enum")) {
      if (!s["enum"].is_array()) return error(path, "enum must be an array");
      std::vector<Json> e(s["enum"].begin(), s["enum"].end());
      if (s.contains("const")) {
        // Both: the const, if it is in the enum.
        if (std::find(e.begin(), e.end(), values[0]) == e.end()) values.clear();
      } else {
        values = e;
      }
    }
    uint32_t types = s.contains("type") ? types_of(s["type"]) : kTAll;
    for (auto it = s.begin(); it != s.end(); ++it) {
      const std::string& k = it.key();
      if (k == "enum" || k == "const" || k == "type" || is_annotation(k)) continue;
      if (!kStringKeys.count(k) && !kNumberKeys.count(k)) {
        return InvalidArgument("keyword '" + k + "' beside enum/const is not supported at " + where(path));
      }
    }
    std::vector<ExprId> strings, others;
    for (const Json& v : values) {
      uint32_t vt = value_type(v);
      if ((vt & types) == 0) continue;
      if (v.is_number()) {
        auto ok = number_in_bounds(v, s, path);
        if (!ok.ok()) return ok.status();
        if (!*ok) continue;
        if (s.contains("multipleOf")) {
          return InvalidArgument("keyword 'multipleOf' beside enum/const is not supported at " + where(path));
        }
      }
      (v.is_string() ? strings : others).push_back(g_.literal(compact(v)));
    }
    ExprId str = g_.alt(strings);
    bool constrained = false;
    for (const auto& k : kStringKeys) constrained |= s.contains(k);
    if (constrained && !strings.empty()) {
      auto body = string_body(s, path);
      if (!body.ok()) return body.status();
      str = g_.intersect(str, json_.quoted(*body));
    }
    others.push_back(str);
    ExprId out = g_.alt(others);
    if (g_.expr(out).kind == ExprKind::kNothing) {
      return InvalidArgument("no value of enum/const satisfies the schema at " + where(path));
    }
    return out;
  }

  StatusOr<bool> number_in_bounds(const Json& v, const Json& s, const std::string& path) {
    auto d = Decimal::parse(compact(v));
    if (!d.ok()) return d.status();
    auto lo = lower_bound(s, path);
    if (!lo.ok()) return lo.status();
    auto hi = upper_bound(s, path);
    if (!hi.ok()) return hi.status();
    if (*lo) {
      int c = compare(*d, (*lo)->value);
      if (c < 0 || (c == 0 && !(*lo)->inclusive)) return false;
    }
    if (*hi) {
      int c = compare(*d, (*hi)->value);
      if (c > 0 || (c == 0 && !(*hi)->inclusive)) return false;
    }
    return true;
  }

  // ---- by type ----
  StatusOr<ExprId> compile_types(const Json& s, const std::string& path, uint32_t depth) {
    uint32_t types = 0;
    if (s.contains("type")) {
      const Json& t = s["type"];
      if (t.is_string()) {
        types = type_bit(t.get<std::string>());
        if (!types) return InvalidArgument("unsupported type '" + t.get<std::string>() + "' at " + where(path));
      } else if (t.is_array() && !t.empty()) {
        for (const auto& x : t) {
          if (!x.is_string() || !type_bit(x.get<std::string>())) return error(path, "bad entry in 'type'");
          types |= type_bit(x.get<std::string>());
        }
      } else {
        return error(path, "'type' must be a string or a non-empty array");
      }
    } else {
      auto has_any = [&](const std::set<std::string, std::less<>>& keys) {
        for (const auto& k : keys) {
          if (s.contains(k)) return true;
        }
        return false;
      };
      if (has_any(kObjectKeys)) types |= kTObject;
      if (has_any(kArrayKeys)) types |= kTArray;
      if (has_any(kStringKeys)) types |= kTString;
      if (has_any(kNumberKeys)) types |= kTNumber;
      if (types == 0) return json_.any_value();
    }
    if ((types & kTNumber) && (types & kTInteger)) types &= ~kTInteger;  // number covers integer
    std::vector<ExprId> alts;
    auto add = [&](StatusOr<ExprId> e) -> Status {
      if (!e.ok()) return e.status();
      alts.push_back(*e);
      return Status::Ok();
    };
    if (types & kTObject) KR_RETURN_IF_ERROR(add(compile_object(s, path, depth)));
    if (types & kTArray) KR_RETURN_IF_ERROR(add(compile_array(s, path, depth)));
    if (types & kTString) {
      auto body = string_body(s, path);
      if (!body.ok()) return body.status();
      alts.push_back(json_.quoted(*body));
    }
    if (types & kTNumber) KR_RETURN_IF_ERROR(add(compile_number(s, path, false)));
    if (types & kTInteger) KR_RETURN_IF_ERROR(add(compile_number(s, path, true)));
    if (types & kTBoolean) alts.push_back(json_.boolean());
    if (types & kTNull) alts.push_back(json_.null());
    return g_.alt(alts);
  }

  static StatusOr<uint32_t> count(const Json& s, const char* key, const std::string& path, uint32_t dflt) {
    if (!s.contains(key)) return dflt;
    const Json& v = s[key];
    if (!v.is_number() || v.get<double>() < 0 || v.get<double>() != static_cast<double>(static_cast<int64_t>(v.get<double>()))) {
      return error(path, std::string("'") + key + "' must be a non-negative integer");
    }
    double d = v.get<double>();
    if (d > 100000) {
      return InvalidArgument(std::string("'") + key + "' above 100000 is not supported at " + where(path));
    }
    return static_cast<uint32_t>(d);
  }

  StatusOr<ExprId> string_body(const Json& s, const std::string& path) {
    std::vector<ExprId> parts;
    auto min = count(s, "minLength", path, 0);
    if (!min.ok()) return min.status();
    auto max = count(s, "maxLength", path, kUnbounded);
    if (!max.ok()) return max.status();
    if (*max != kUnbounded && *max < *min) return error(path, "maxLength is below minLength");
    bool has_pattern = s.contains("pattern"), has_format = s.contains("format");
    if (*min > 0 || *max != kUnbounded || (!has_pattern && !has_format)) {
      parts.push_back(g_.repeat(json_.json_char(), *min, *max));
    }
    RegexOptions ro;
    ro.json_string = true;
    if (has_pattern) {
      if (!s["pattern"].is_string()) return error(path, "pattern must be a string");
      ro.search = true;
      auto e = compile_regex(g_, s["pattern"].get<std::string>(), ro);
      if (!e.ok()) return InvalidArgument(e.status().message() + " (pattern at " + where(path) + ")");
      parts.push_back(*e);
    }
    if (has_format) {
      if (!s["format"].is_string()) return error(path, "format must be a string");
      auto re = format_regex(s["format"].get<std::string>());
      if (!re) {
        return InvalidArgument("unsupported string format '" + s["format"].get<std::string>() + "' at " + where(path));
      }
      ro.search = false;
      auto e = compile_regex(g_, *re, ro);
      if (!e.ok()) return Internal("format regex: " + e.status().message());
      parts.push_back(*e);
    }
    ExprId body = parts[0];
    for (size_t i = 1; i < parts.size(); ++i) body = g_.intersect(body, parts[i]);
    return body;
  }

  StatusOr<std::optional<Bound>> bound(const Json& s, const char* key, const char* exclusive_key,
                                       const std::string& path, bool lower) {
    std::optional<Bound> out;
    auto tighter = [&](const Bound& b) {
      if (!out) {
        out = b;
        return;
      }
      int c = compare(b.value, out->value);
      if ((lower ? c > 0 : c < 0) || (c == 0 && !b.inclusive)) out = b;
    };
    if (s.contains(key)) {
      if (!s[key].is_number()) return error(path, std::string("'") + key + "' must be a number");
      auto d = Decimal::parse(compact(s[key]));
      if (!d.ok()) return d.status();
      bool excl = s.contains(exclusive_key) && s[exclusive_key].is_boolean() && s[exclusive_key].get<bool>();
      tighter({*d, !excl});
    }
    if (s.contains(exclusive_key) && !s[exclusive_key].is_boolean()) {
      if (!s[exclusive_key].is_number()) return error(path, std::string("'") + exclusive_key + "' must be a number");
      auto d = Decimal::parse(compact(s[exclusive_key]));
      if (!d.ok()) return d.status();
      tighter({*d, false});
    }
    return out;
  }
  StatusOr<std::optional<Bound>> lower_bound(const Json& s, const std::string& path) {
    return bound(s, "minimum", "exclusiveMinimum", path, true);
  }
  StatusOr<std::optional<Bound>> upper_bound(const Json& s, const std::string& path) {
    return bound(s, "maximum", "exclusiveMaximum", path, false);
  }

  StatusOr<ExprId> compile_number(const Json& s, const std::string& path, bool integer) {
    if (s.contains("multipleOf")) {
      const Json& m = s["multipleOf"];
      if (!(integer && m.is_number() && m.get<double>() == 1.0)) {
        return InvalidArgument("keyword 'multipleOf' is not supported at " + where(path) +
                               " (only multipleOf 1 on integers)");
      }
    }
    auto lo = lower_bound(s, path);
    if (!lo.ok()) return lo.status();
    auto hi = upper_bound(s, path);
    if (!hi.ok()) return hi.status();
    if (!*lo && !*hi) return integer ? json_.integer() : json_.number();
    return integer ? integer_range_expr(g_, *lo, *hi) : number_range_expr(g_, *lo, *hi);
  }

  StatusOr<ExprId> compile_array(const Json& s, const std::string& path, uint32_t depth) {
    if (s.contains("uniqueItems") && !(s["uniqueItems"].is_boolean())) return error(path, "uniqueItems must be a boolean");
    auto min = count(s, "minItems", path, 0);
    if (!min.ok()) return min.status();
    auto max = count(s, "maxItems", path, kUnbounded);
    if (!max.ok()) return max.status();
    if (s.contains("uniqueItems") && s["uniqueItems"].get<bool>() && (*max == kUnbounded || *max > 1)) {
      return InvalidArgument("keyword 'uniqueItems' (true) is not supported at " + where(path));
    }
    if (*max != kUnbounded && *max < *min) return error(path, "maxItems is below minItems");
    std::vector<ExprId> prefix;
    const Json* prefix_json = nullptr;
    std::optional<Json> rest;  // schema of the items after the prefix
    if (s.contains("prefixItems")) {
      prefix_json = &s["prefixItems"];
      if (s.contains("items")) rest = s["items"];
      if (s.contains("additionalItems")) return InvalidArgument("'additionalItems' beside prefixItems is not supported at " + where(path));
    } else if (s.contains("items") && s["items"].is_array()) {
      prefix_json = &s["items"];  // draft-4 tuple form
      if (s.contains("additionalItems")) rest = s["additionalItems"];
    } else {
      if (s.contains("additionalItems")) return InvalidArgument("'additionalItems' without tuple items is not supported at " + where(path));
      if (s.contains("items")) rest = s["items"];
    }
    std::string items_path = path + (s.contains("prefixItems") ? "/items" : (s.contains("items") && s["items"].is_array() ? "/additionalItems" : "/items"));
    if (prefix_json) {
      if (!prefix_json->is_array()) return error(path, "prefixItems must be an array");
      for (size_t i = 0; i < prefix_json->size(); ++i) {
        auto e = compile(prefix_json->at(i), path + "/prefixItems/" + std::to_string(i), depth + 1);
        if (!e.ok()) return e.status();
        prefix.push_back(*e);
      }
    }
    ExprId item;
    if (!rest) {
      item = json_.any_value();
    } else {
      auto e = compile(*rest, items_path, depth + 1);
      if (!e.ok()) return e.status();
      item = *e;
    }
    const bool no_rest = g_.expr(item).kind == ExprKind::kNothing;
    uint32_t max_n = *max;
    if (no_rest) max_n = std::min<uint32_t>(max_n, static_cast<uint32_t>(prefix.size()));
    const uint32_t min_n = *min;
    if (min_n > max_n) return InvalidArgument("no array satisfies the schema at " + where(path));
    if (prefix.empty()) {
      uint64_t copies = max_n == kUnbounded ? 2 : max_n;
      item = as_rule_if_big(item, copies);
      return json_.array_of(item, min_n, max_n);
    }
    // Element i: prefix[i] for i < k, else item. Built from the back:
    // tail(i) = elements i.. (each preceded by ","), optional from min_n on.
    const uint32_t k = static_cast<uint32_t>(prefix.size());
    ExprId sep = g_.seq({g_.byte(','), json_.ws()});
    ExprId tail;
    if (max_n == kUnbounded || max_n > k) {
      uint32_t rest_min = min_n > k ? min_n - k : 0;
      uint32_t rest_max = max_n == kUnbounded ? kUnbounded : max_n - k;
      item = as_rule_if_big(item, rest_max == kUnbounded ? 2 : rest_max);
      tail = g_.repeat(g_.seq({sep, item}), rest_min, rest_max);
    } else {
      tail = g_.empty();
    }
    for (uint32_t i = std::min(k, max_n); i-- > 1;) {
      ExprId here = g_.seq({sep, prefix[i], tail});
      tail = i + 1 > min_n ? g_.optional(here) : here;
    }
    ExprId body = g_.seq({prefix[0], tail, json_.ws()});
    if (max_n == 0) return json_.array_of(item, 0, 0);
    return g_.seq({g_.byte('['), json_.ws(), min_n == 0 ? g_.optional(body) : body, g_.byte(']')});
  }

  StatusOr<ExprId> compile_object(const Json& s, const std::string& path, uint32_t depth) {
    for (const char* k : {"minProperties", "maxProperties"}) {
      if (s.contains(k) && !s[k].is_number_unsigned() && !s[k].is_number_integer()) {
        return error(path, std::string(k) + " must be an integer");
      }
    }
    const Json empty_obj = Json::object();
    const Json& props = s.contains("properties") ? s["properties"] : empty_obj;
    if (!props.is_object()) return error(path, "properties must be an object");
    std::vector<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) return error(path, "required must be an array");
      for (const auto& r : s["required"]) {
        if (!r.is_string()) return error(path, "required entries must be strings");
        if (std::find(required.begin(), required.end(), r.get<std::string>()) == required.end()) {
          required.push_back(r.get<std::string>());
        }
      }
    }
    // Extra properties: additionalProperties; absent means none when
    // properties are listed (a tighter grammar, still valid), any otherwise.
    std::optional<Json> extra;
    if (s.contains("additionalProperties")) {
      const Json& a = s["additionalProperties"];
      if (!(a.is_boolean() && !a.get<bool>())) extra = a;
    } else if (props.empty() && !s.contains("unevaluatedProperties")) {
      extra = Json(true);
    }
    if (s.contains("unevaluatedProperties")) {
      const Json& u = s["unevaluatedProperties"];
      if (!(u.is_boolean() && !u.get<bool>())) {
        return InvalidArgument("keyword 'unevaluatedProperties' (other than false) is not supported at " + where(path));
      }
      extra.reset();
    }
    struct Prop {
      std::string name;
      ExprId value;
      bool required;
    };
    std::vector<Prop> list;
    for (auto it = props.begin(); it != props.end(); ++it) {
      bool req = std::find(required.begin(), required.end(), it.key()) != required.end();
      auto e = compile(it.value(), path + "/properties/" + escape_pointer_token(it.key()), depth + 1);
      if (!e.ok()) return e.status();
      if (g_.expr(*e).kind == ExprKind::kNothing) {
        if (req) return InvalidArgument("required property '" + it.key() + "' can have no value at " + where(path));
        continue;  // `false` schema: the property must be absent
      }
      list.push_back({it.key(), *e, req});
    }
    ExprId extra_value = g_.nothing();
    if (extra) {
      auto e = compile(*extra, path + "/additionalProperties", depth + 1);
      if (!e.ok()) return e.status();
      extra_value = *e;
    }
    for (const std::string& r : required) {
      if (props.contains(r)) continue;
      if (g_.expr(extra_value).kind == ExprKind::kNothing) {
        return InvalidArgument("required property '" + r + "' is not allowed by the schema at " + where(path));
      }
      list.push_back({r, extra_value, true});
    }
    size_t nreq = 0;
    for (const Prop& p : list) nreq += p.required;
    const bool has_extra = g_.expr(extra_value).kind != ExprKind::kNothing;
    if (s.contains("minProperties") && s["minProperties"].get<int64_t>() > static_cast<int64_t>(nreq)) {
      return InvalidArgument("keyword 'minProperties' (above the number of required properties) is not supported at " + where(path));
    }
    if (s.contains("maxProperties") && (has_extra || s["maxProperties"].get<int64_t>() < static_cast<int64_t>(list.size()))) {
      return InvalidArgument("keyword 'maxProperties' (below the number of possible properties) is not supported at " + where(path));
    }
    // kv_i; after(i): properties i.. each preceded by ","; first(i): the
    // same when nothing was written yet.
    const size_t n = list.size();
    std::vector<ExprId> kv(n);
    for (size_t i = 0; i < n; ++i) {
      std::string key = compact(Json(list[i].name));
      ExprId value = as_rule_if_big(list[i].value, 2);
      kv[i] = g_.seq({g_.literal(key), g_.byte(':'), json_.ws(), value});
    }
    ExprId sep = g_.seq({g_.byte(','), json_.ws()});
    ExprId extra_kv = g_.nothing();
    if (has_extra) {
      std::vector<ExprId> names;
      for (const Prop& p : list) names.push_back(g_.literal(compact(Json(p.name))));
      ExprId key = json_.string();
      if (!names.empty()) key = g_.minus(key, g_.alt(names));
      extra_kv = g_.seq({key, g_.byte(':'), json_.ws(), as_rule_if_big(extra_value, 2)});
    }
    std::vector<ExprId> items;
    std::vector<bool> req;
    for (size_t i = 0; i < n; ++i) {
      items.push_back(kv[i]);
      req.push_back(list[i].required);
    }
    ExprId body = g_.seq({g_.ordered_list(items, req, sep, extra_kv), json_.ws()});
    return g_.seq({g_.byte('{'), json_.ws(), nreq > 0 ? body : g_.optional(body), g_.byte('}')});
  }

  // Expressions copied many times become rules (calls are cheap to copy).
  static constexpr uint64_t kInlineLimit = 4000;
  static constexpr uint64_t kCopyBudget = 20000;
  ExprId as_rule_if_big(ExprId e, uint64_t copies) {
    if (copies <= 1) return e;
    const Expr& x = g_.expr(e);
    if (x.kind == ExprKind::kRuleRef || x.kind == ExprKind::kNothing) return e;
    if (size_of(e) * copies <= kCopyBudget) return e;
    uint32_t r = g_.add_rule("json--part-" + std::to_string(g_.rules().size()));
    g_.set_rule_body(r, e);
    return g_.rule_ref(r);
  }
  // Rough NFA size of an expression once expanded.
  uint64_t size_of(ExprId e) {
    if (e < size_memo_.size() && size_memo_[e]) return size_memo_[e];
    const Expr& x = g_.expr(e);
    uint64_t s = 1;
    switch (x.kind) {
      case ExprKind::kSeq:
      case ExprKind::kAlt:
        for (uint32_t i = 0; i < x.b; ++i) s += size_of(g_.children(x)[i]);
        break;
      case ExprKind::kRepeat: {
        uint64_t copies = x.max == kUnbounded ? std::max<uint64_t>(x.min, 1) + 1 : x.max;
        s += size_of(x.a) * copies;
        break;
      }
      case ExprKind::kAnd:
      case ExprKind::kMinus: s += size_of(x.a) + size_of(x.b); break;
      case ExprKind::kList:
        for (uint32_t i = 0; i < x.b + 2; ++i) s += 2 * size_of(g_.children(x)[i]);
        break;
      default: break;
    }
    s = std::min<uint64_t>(s, uint64_t{1} << 40);
    if (size_memo_.size() <= e) size_memo_.resize(g_.num_exprs() + 1, 0);
    size_memo_[e] = s;
    return s;
  }

  const Json& root_;
  Grammar& g_;
  const JsonSchemaOptions& o_;
  JsonPieces json_;
  std::unordered_map<std::string, uint32_t> rules_;
  std::unordered_map<std::string, ExprId> memo_;
  std::set<std::string> in_progress_;
  std::vector<uint64_t> size_memo_;
};

// Nesting depth of a JSON text (brackets outside strings), checked before parsing.
size_t json_depth(std::string_view text) {
  size_t depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max_depth = std::max(max_depth, ++depth);
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return max_depth;
}

}  // namespace

Status compile_json_schema_into(Grammar& g, uint32_t rule, std::string_view schema_json,
                                const JsonSchemaOptions& options) {
  if (schema_json.size() > options.max_schema_bytes) {
    return InvalidArgument("JSON schema is too large (" + std::to_string(schema_json.size()) + " bytes, limit " +
                           std::to_string(options.max_schema_bytes) + ")");
  }
  if (json_depth(schema_json) > options.max_depth) {
    return InvalidArgument("JSON schema nests too deeply (limit " + std::to_string(options.max_depth) + " levels)");
  }
  Json schema = Json::parse(schema_json.begin(), schema_json.end(), nullptr, false);
  if (schema.is_discarded()) return InvalidArgument("JSON schema is not valid JSON");
  SchemaCompiler c(schema, g, options);
  auto e = c.compile_root();
  if (!e.ok()) return e.status();
  if (g.expr(*e).kind == ExprKind::kNothing) return InvalidArgument("the JSON schema accepts no value");
  g.set_rule_body(rule, *e);
  return Status::Ok();
}

StatusOr<Grammar> compile_json_schema(std::string_view schema_json, const JsonSchemaOptions& options) {
  Grammar g;
  uint32_t root = g.add_rule("root");
  g.set_root(root);
  KR_RETURN_IF_ERROR(compile_json_schema_into(g, root, schema_json, options));
  return g;
}

Grammar json_object_grammar(const JsonSchemaOptions& options) {
  Grammar g;
  uint32_t root = g.add_rule("root");
  g.set_root(root);
  JsonPieces j(g, options);
  g.set_rule_body(root, j.object_of(j.string(), j.any_value()));
  return g;
}

Grammar json_value_grammar(const JsonSchemaOptions& options) {
  Grammar g;
  uint32_t root = g.add_rule("root");
  g.set_root(root);
  JsonPieces j(g, options);
  g.set_rule_body(root, j.any_value());
  return g;
}

}  // namespace kr::grammar
