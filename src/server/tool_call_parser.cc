#include "server/tool_call_parser.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace kr {

namespace {

constexpr size_t npos = std::string::npos;
constexpr std::string_view kHermesOpen = "<tool_call>";
constexpr std::string_view kHermesClose = "</tool_call>";
constexpr std::string_view kMistralMarker = "[TOOL_CALLS]";
constexpr std::string_view kMistralArgs = "[ARGS]";
constexpr std::string_view kPythonTag = "<|python_tag|>";

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

size_t skip_ws(std::string_view s, size_t i) {
  while (i < s.size() && is_ws(s[i])) ++i;
  return i;
}

// Longest suffix of s that is a proper prefix of marker.
size_t partial_marker(std::string_view s, std::string_view marker) {
  for (size_t n = std::min(s.size(), marker.size() - 1); n > 0; --n) {
    if (s.substr(s.size() - n) == marker.substr(0, n)) return n;
  }
  return 0;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// A JSON string at s[i] == '"': returns the position after the closing quote,
// or npos when the text ends first. `decoded` gets the characters of every
// complete escape; *bad is set on malformed input.
size_t scan_string(std::string_view s, size_t i, std::string* decoded, bool* bad) {
  size_t k = i + 1;
  while (k < s.size()) {
    char c = s[k];
    if (c == '"') return k + 1;
    if (c != '\\') {
      if (decoded) decoded->push_back(c);
      ++k;
      continue;
    }
    if (k + 1 >= s.size()) return npos;
    char e = s[k + 1];
    uint32_t cp = 0;
    size_t len = 2;
    switch (e) {
      case 'n': cp = '\n'; break;
      case 't': cp = '\t'; break;
      case 'r': cp = '\r'; break;
      case 'b': cp = '\b'; break;
      case 'f': cp = '\f'; break;
      case '/': cp = '/'; break;
      case '\\': cp = '\\'; break;
      case '"': cp = '"'; break;
      case 'u': {
        if (k + 6 > s.size()) return npos;
        for (size_t h = 0; h < 4; ++h) {
          int v = hex_value(s[k + 2 + h]);
          if (v < 0) {
            *bad = true;
            return npos;
          }
          cp = cp * 16 + static_cast<uint32_t>(v);
        }
        len = 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {  // a surrogate pair needs its second half
          if (k + 12 > s.size()) return npos;
          uint32_t lo = 0;
          bool ok = s[k + 6] == '\\' && s[k + 7] == 'u';
          for (size_t h = 0; h < 4 && ok; ++h) {
            int v = hex_value(s[k + 8 + h]);
            ok = v >= 0;
            lo = lo * 16 + static_cast<uint32_t>(std::max(v, 0));
          }
          if (ok && lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            len = 12;
          } else {
            cp = 0xFFFD;
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          cp = 0xFFFD;
        }
        break;
      }
      default: *bad = true; return npos;
    }
    if (decoded) append_utf8(*decoded, cp);
    k += len;
  }
  return npos;
}

// Any JSON value at s[i]: the position after it, or npos when the text ends
// first (a scalar at the very end may still grow).
size_t skip_value(std::string_view s, size_t i, bool* bad) {
  if (i >= s.size()) return npos;
  char c = s[i];
  if (c == '"') return scan_string(s, i, nullptr, bad);
  if (c == '{' || c == '[') {
    int depth = 0;
    size_t k = i;
    while (k < s.size()) {
      char d = s[k];
      if (d == '"') {
        k = scan_string(s, k, nullptr, bad);
        if (k == npos) return npos;
        continue;
      }
      if (d == '{' || d == '[') ++depth;
      if (d == '}' || d == ']') {
        if (--depth == 0) return k + 1;
      }
      ++k;
    }
    return npos;
  }
  size_t k = i;
  while (k < s.size() && (std::isalnum(static_cast<unsigned char>(s[k])) || s[k] == '.' || s[k] == '+' || s[k] == '-')) ++k;
  if (k == i) {
    *bad = true;
    return npos;
  }
  return k == s.size() ? npos : k;
}

struct Member {
  std::string key;
  size_t value_start;
  size_t value_end;  // npos: not complete yet
};

struct ObjectScan {
  std::vector<Member> members;
  size_t end = npos;  // after '}', npos when incomplete
  bool bad = false;
};

// The object at s[i] == '{' as far as it goes.
ObjectScan scan_object(std::string_view s, size_t i) {
  ObjectScan o;
  size_t k = skip_ws(s, i + 1);
  if (k >= s.size()) return o;
  if (s[k] == '}') {
    o.end = k + 1;
    return o;
  }
  for (;;) {
    if (k >= s.size()) return o;
    if (s[k] != '"') {
      o.bad = true;
      return o;
    }
    std::string key;
    size_t kend = scan_string(s, k, &key, &o.bad);
    if (kend == npos) return o;
    k = skip_ws(s, kend);
    if (k >= s.size()) return o;
    if (s[k] != ':') {
      o.bad = true;
      return o;
    }
    k = skip_ws(s, k + 1);
    if (k >= s.size()) {
      o.members.push_back({key, k, npos});
      return o;
    }
    size_t vend = skip_value(s, k, &o.bad);
    o.members.push_back({key, k, vend});
    if (vend == npos) return o;
    k = skip_ws(s, vend);
    if (k >= s.size()) return o;
    if (s[k] == ',') {
      k = skip_ws(s, k + 1);
      continue;
    }
    if (s[k] == '}') {
      o.end = k + 1;
      return o;
    }
    o.bad = true;
    return o;
  }
}

const Member* find_member(const ObjectScan& o, std::initializer_list<std::string_view> keys) {
  for (const Member& m : o.members) {
    for (std::string_view k : keys) {
      if (m.key == k) return &m;
    }
  }
  return nullptr;
}

}  // namespace

const char* tool_call_format_name(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::kLlama3Json: return "llama3_json";
    case ToolCallFormat::kHermes: return "hermes";
    case ToolCallFormat::kMistral: return "mistral";
  }
  return "?";
}

std::optional<ToolCallFormat> detect_tool_call_format(std::string_view t) {
  if (t.find("<tool_call>") != std::string_view::npos) return ToolCallFormat::kHermes;
  if (t.find("[TOOL_CALLS]") != std::string_view::npos) return ToolCallFormat::kMistral;
  if (t.find("<|python_tag|>") != std::string_view::npos || t.find("Environment: ipython") != std::string_view::npos ||
      (t.find("<|start_header_id|>") != std::string_view::npos && t.find("\"parameters\"") != std::string_view::npos)) {
    return ToolCallFormat::kLlama3Json;
  }
  return std::nullopt;
}

// ---- streaming ----

void ToolCallStreamParser::emit_content(ToolCallStreamDelta& out, size_t end) {
  if (end > pos_) out.content.append(buf_, pos_, end - pos_);
  pos_ = std::max(pos_, end);
}

ToolCallStreamDelta ToolCallStreamParser::push(std::string_view text) {
  ToolCallStreamDelta out;
  buf_.append(text);
  step(out, false);
  return out;
}

ToolCallStreamDelta ToolCallStreamParser::finish() {
  ToolCallStreamDelta out;
  step(out, true);
  // Whatever is still held is content (a partial marker, or a call that never
  // got a name); whitespace left over around tool calls is dropped.
  if (pos_ < buf_.size()) {
    if (!(calls_opened_ > 0 && skip_ws(buf_, pos_) == buf_.size())) emit_content(out, buf_.size());
    pos_ = buf_.size();
  }
  return out;
}

// Whitespace in content right before a tool-call marker (or at the end after
// tool calls) is not sent: it is held until something else follows.
void ToolCallStreamParser::step(ToolCallStreamDelta& out, bool at_end) {
  for (;;) {
    switch (mode_) {
      case Mode::kStart: {
        if (format_ != ToolCallFormat::kLlama3Json) {
          mode_ = Mode::kContent;
          continue;
        }
        size_t i = skip_ws(buf_, pos_);
        std::string_view rest = std::string_view(buf_).substr(i);
        if (rest.substr(0, kPythonTag.size()) == kPythonTag) {
          i = skip_ws(buf_, i + kPythonTag.size());
          rest = std::string_view(buf_).substr(i);
        } else if (!at_end && !rest.empty() && kPythonTag.substr(0, rest.size()) == rest) {
          return;  // may still become <|python_tag|>
        }
        if (rest.empty()) {
          if (at_end) mode_ = Mode::kPlain;
          if (!at_end) return;
          continue;
        }
        if (rest[0] == '{') {
          pos_ = i;
          call_start_ = i;
          mode_ = Mode::kCall;
        } else {
          mode_ = Mode::kPlain;
        }
        continue;
      }
      case Mode::kPlain:
        emit_content(out, buf_.size());
        return;
      case Mode::kContent: {
        const std::string_view marker = format_ == ToolCallFormat::kHermes ? kHermesOpen : kMistralMarker;
        size_t f = buf_.find(marker, pos_);
        if (f != npos) {
          // Content before the marker, without the whitespace that leads to it.
          size_t end = f;
          while (end > pos_ && is_ws(buf_[end - 1])) --end;
          emit_content(out, end);
          pos_ = f + marker.size();
          mode_ = Mode::kOpenTag;
          continue;
        }
        size_t end = buf_.size() - (at_end ? 0 : partial_marker(std::string_view(buf_).substr(pos_), marker));
        size_t text_end = end;
        while (text_end > pos_ && is_ws(buf_[text_end - 1])) --text_end;  // hold trailing whitespace
        if (at_end) return;  // finish() decides about held whitespace
        emit_content(out, text_end);
        return;
      }
      case Mode::kOpenTag: {
        size_t i = skip_ws(buf_, pos_);
        if (i >= buf_.size()) return;
        if (format_ == ToolCallFormat::kHermes) {
          if (buf_[i] == '{') {
            call_start_ = i;
            pos_ = i;
            mode_ = Mode::kCall;
          } else {
            // Not JSON after the tag: keep it as text.
            out.content.append(kHermesOpen);
            mode_ = Mode::kContent;
          }
          continue;
        }
        // Mistral: [TOOL_CALLS][ {...}, ... ] or [TOOL_CALLS]name[ARGS]{...}
        if (buf_[i] == '[') {
          pos_ = i + 1;
          mode_ = Mode::kAfterCall;  // in the array: a call, ',' or ']'
          mistral_name_.clear();
        } else {
          pos_ = i;
          mode_ = Mode::kMistralName;
        }
        continue;
      }
      case Mode::kMistralName: {
        size_t f = buf_.find(kMistralArgs, pos_);
        if (f == npos) {
          if (at_end) mode_ = Mode::kPlain;
          if (!at_end) return;
          continue;
        }
        std::string name = buf_.substr(pos_, f - pos_);
        while (!name.empty() && is_ws(name.back())) name.pop_back();
        size_t i = skip_ws(buf_, f + kMistralArgs.size());
        if (i >= buf_.size()) return;
        if (buf_[i] != '{' || name.empty()) {
          mode_ = Mode::kPlain;
          continue;
        }
        mistral_name_ = name;
        call_start_ = i;
        pos_ = i;
        mode_ = Mode::kCall;
        continue;
      }
      case Mode::kCall:
        if (!scan_call(out, at_end)) return;
        continue;
      case Mode::kAfterCall: {
        size_t i = skip_ws(buf_, pos_);
        if (format_ == ToolCallFormat::kLlama3Json) {
          while (i < buf_.size() && (buf_[i] == ';' || is_ws(buf_[i]))) ++i;
          if (i >= buf_.size()) return;
          if (buf_[i] == '{') {
            pos_ = i;
            call_start_ = i;
            mode_ = Mode::kCall;
          } else {
            mode_ = Mode::kPlain;
          }
          continue;
        }
        if (format_ == ToolCallFormat::kHermes) {
          if (i >= buf_.size()) return;
          std::string_view rest = std::string_view(buf_).substr(i);
          if (rest.substr(0, kHermesClose.size()) == kHermesClose) {
            pos_ = i + kHermesClose.size();
          } else if (!at_end && kHermesClose.substr(0, rest.size()) == rest) {
            return;
          }
          mode_ = Mode::kContent;
          continue;
        }
        // Mistral
        if (!mistral_name_.empty()) {  // name[ARGS]{...} form: another [TOOL_CALLS] may follow
          mistral_name_.clear();
          mode_ = Mode::kContent;
          continue;
        }
        while (i < buf_.size() && (buf_[i] == ',' || is_ws(buf_[i]))) ++i;
        if (i >= buf_.size()) return;
        if (buf_[i] == '{') {
          pos_ = i;
          call_start_ = i;
          mode_ = Mode::kCall;
        } else if (buf_[i] == ']') {
          pos_ = i + 1;
          mode_ = Mode::kContent;
        } else {
          pos_ = i;
          mode_ = Mode::kPlain;
        }
        continue;
      }
    }
  }
}

// Advances the call whose JSON object starts at call_start_. True when the
// object is complete (mode_ moved on), false when more text is needed.
bool ToolCallStreamParser::scan_call(ToolCallStreamDelta& out, bool at_end) {
  const std::string_view s(buf_);
  ObjectScan o = scan_object(s, call_start_);
  const bool name_form = !mistral_name_.empty();
  std::string name;
  std::string id;
  const Member* args = nullptr;
  size_t args_start = 0, args_end = npos;
  if (name_form) {
    name = mistral_name_;
    args_start = call_start_;
    args_end = o.end;
  } else {
    const Member* nm = find_member(o, {"name"});
    if (nm && nm->value_end != npos && s[nm->value_start] == '"') {
      bool bad = false;
      scan_string(s, nm->value_start, &name, &bad);
    }
    const Member* im = find_member(o, {"id"});
    if (im && im->value_end != npos && s[im->value_start] == '"') {
      bool bad = false;
      scan_string(s, im->value_start, &id, &bad);
    }
    args = find_member(o, {"arguments", "parameters"});
    if (args) {
      args_start = args->value_start;
      args_end = args->value_end;
    }
  }
  // A bare JSON object (Llama format) is a call only with an arguments key
  // too: {"name": "Ann", "age": 3} is an answer.
  const bool is_call = !name.empty() && (format_ != ToolCallFormat::kLlama3Json || args);
  if (!call_open_ && is_call) {
    ToolCallDelta d;
    d.index = calls_opened_++;
    d.opens = true;
    d.id = id;
    d.name = name;
    out.calls.push_back(std::move(d));
    call_open_ = true;
    args_sent_ = 0;
  }
  if (call_open_ && (name_form || args) && args_start < s.size()) {
    std::string text;
    if (s[args_start] == '"') {  // arguments written as a JSON string: its decoded text
      bool bad = false;
      scan_string(s, args_start, &text, &bad);
    } else {
      text = std::string(s.substr(args_start, (args_end == npos ? s.size() : args_end) - args_start));
      if (args_end == npos) {
        while (!text.empty() && is_ws(text.back())) text.pop_back();  // may be followed by more
      }
    }
    if (text.size() > args_sent_) {
      ToolCallDelta d;
      d.index = calls_opened_ - 1;
      d.arguments = text.substr(args_sent_);
      args_sent_ = text.size();
      out.calls.push_back(std::move(d));
    }
  }
  const bool complete = o.end != npos;
  if (complete || o.bad || at_end) {
    if (!call_open_) {
      // Not a tool call after all: the text is content.
      if (!at_end && !complete && !o.bad) return false;
      mode_ = Mode::kPlain;
      return true;
    }
    if (args_sent_ == 0 && !name_form && !args) {
      ToolCallDelta d;
      d.index = calls_opened_ - 1;
      d.arguments = "{}";
      args_sent_ = 2;
      out.calls.push_back(std::move(d));
    }
    call_open_ = false;
    if (!complete) {
      pos_ = buf_.size();  // a malformed or cut-off call: what was sent stays
      mode_ = Mode::kPlain;
      return true;
    }
    pos_ = o.end;
    mode_ = Mode::kAfterCall;
    return true;
  }
  return false;
}

ToolCallParse parse_tool_calls(ToolCallFormat format, std::string_view text) {
  ToolCallStreamParser p(format);
  ToolCallParse r;
  auto take = [&](ToolCallStreamDelta d) {
    r.content += d.content;
    for (ToolCallDelta& c : d.calls) {
      if (c.opens) r.calls.push_back({c.id, c.name, ""});
      r.calls[c.index].arguments += c.arguments;
    }
  };
  take(p.push(text));
  take(p.finish());
  return r;
}

// ---- the grammar that forces a tool call ----

namespace {

// A GBNF string literal for the bytes of `s`.
std::string gbnf_literal(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

StatusOr<grammar::GrammarSpec> build_tool_call_grammar(ToolCallFormat format, std::string_view tools_json,
                                                       std::string_view function, bool parallel,
                                                       std::optional<int32_t> mistral_tool_calls_token) {
  auto tools = nlohmann::json::parse(tools_json, nullptr, false);
  if (tools.is_discarded() || !tools.is_array()) return InvalidArgument("'tools' must be an array");
  struct Fn {
    std::string name;
    std::string schema;
  };
  std::vector<Fn> fns;
  for (size_t i = 0; i < tools.size(); ++i) {
    const auto& t = tools[i];
    const std::string where = "tools[" + std::to_string(i) + "]";
    if (!t.is_object() || !t.contains("function") || !t["function"].is_object()) {
      return InvalidArgument(where + " must be {\"type\": \"function\", \"function\": {...}}");
    }
    if (t.contains("type") && t["type"] != "function") return InvalidArgument(where + ".type must be \"function\"");
    const auto& f = t["function"];
    if (!f.contains("name") || !f["name"].is_string() || f["name"].get<std::string>().empty()) {
      return InvalidArgument(where + ".function.name must be a non-empty string");
    }
    std::string schema = R"({"type":"object"})";
    if (f.contains("parameters") && !f["parameters"].is_null()) {
      if (!f["parameters"].is_object() && !f["parameters"].is_boolean()) {
        return InvalidArgument(where + ".function.parameters must be a JSON Schema object");
      }
      schema = f["parameters"].dump();
    }
    if (function.empty() || f["name"].get<std::string>() == function) fns.push_back({f["name"].get<std::string>(), schema});
  }
  if (fns.empty()) {
    if (!function.empty()) {
      return InvalidArgument("tool_choice names function '" + std::string(function) + "', which is not in 'tools'");
    }
    return InvalidArgument("tool_choice \"required\" needs at least one function in 'tools'");
  }
  // call ::= "{" ws "\"name\":" ws ( "\"f\"" "," ws "\"arguments\":" ws args-i | ... ) ws "}"
  const std::string args_key = format == ToolCallFormat::kLlama3Json ? "parameters" : "arguments";
  std::string g;
  g += "ws ::= \"\" | \" \" | \"\\n\" [ \\t]{0,20}\n";
  g += "call ::= \"{\" ws \"\\\"name\\\":\" ws (";
  std::vector<std::pair<std::string, std::string>> schemas;
  for (size_t i = 0; i < fns.size(); ++i) {
    const std::string rule = "tool-args-" + std::to_string(i);
    g += i ? "\n  | " : " ";
    g += gbnf_literal(nlohmann::json(fns[i].name).dump()) + " \",\" ws " +
         gbnf_literal("\"" + args_key + "\":") + " ws " + rule;
    schemas.push_back({rule, fns[i].schema});
  }
  g += " ) ws \"}\"\n";
  switch (format) {
    case ToolCallFormat::kLlama3Json:
      // One call per message in this format.
      g += "root ::= call\n";
      break;
    case ToolCallFormat::kHermes:
      g += "block ::= \"<tool_call>\\n\" call \"\\n</tool_call>\"\n";
      g += parallel ? "root ::= block (\"\\n\" block)*\n" : "root ::= block\n";
      break;
    case ToolCallFormat::kMistral: {
      std::string marker = mistral_tool_calls_token ? "<[" + std::to_string(*mistral_tool_calls_token) + "]>"
                                                    : gbnf_literal("[TOOL_CALLS]");
      g += "root ::= " + marker + " \"[\" call " + (parallel ? "(\",\" ws call)* " : "") + "\"]\"\n";
      break;
    }
  }
  return grammar::GrammarSpec::gbnf(std::move(g), std::move(schemas));
}

}  // namespace kr
