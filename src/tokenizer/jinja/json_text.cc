#include "tokenizer/jinja/json_text.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>

namespace kr::jinja {
namespace {

uint32_t decode_utf8(const std::string& s, size_t& i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  int n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : 0;
  uint32_t cp = n == 0 ? c : n == 1 ? (c & 0x1f) : n == 2 ? (c & 0x0f) : (c & 0x07);
  for (int k = 0; k < n && i + 1 < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[++i]) & 0x3f);
  return cp;
}

void append_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default: {
        char buf[16];
        if (c < 0x20) {
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else if (c >= 0x80 && ensure_ascii) {
          uint32_t cp = decode_utf8(s, i);
          if (cp >= 0x10000) {
            cp -= 0x10000;
            std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
          } else {
            std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
          }
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
      }
    }
  }
  out += '"';
}

class Writer {
 public:
  Writer(const JsonStyle& style, const CallSite& site) : style_(style), site_(site) {}

  void write(const Value& v, int level) {
    site_.check_size(out_.size());
    if (level > 256) site_.fail("tojson: value nested too deeply");
    switch (v.type()) {
      case Value::Type::kNone: out_ += "null"; return;
      case Value::Type::kBool: out_ += v.as_bool() ? "true" : "false"; return;
      case Value::Type::kInt: out_ += std::to_string(v.as_int()); return;
      case Value::Type::kFloat: {
        double d = v.as_float();
        if (std::isnan(d)) out_ += "NaN";
        else if (std::isinf(d)) out_ += d > 0 ? "Infinity" : "-Infinity";
        else out_ += float_repr(d);
        return;
      }
      case Value::Type::kString: append_string(out_, v.as_string(), style_.ensure_ascii); return;
      case Value::Type::kList: {
        const auto& items = v.as_list().items;
        if (items.empty()) {
          out_ += "[]";
          return;
        }
        out_ += '[';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out_ += style_.item_separator;
          newline(level + 1);
          write(items[i], level + 1);
        }
        newline(level);
        out_ += ']';
        return;
      }
      case Value::Type::kDict: {
        std::vector<const std::pair<std::string, Value>*> entries;
        for (const auto& e : v.as_dict()->entries()) entries.push_back(&e);
        if (entries.empty()) {
          out_ += "{}";
          return;
        }
        if (style_.sort_keys) {
          std::sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return a->first < b->first; });
        }
        out_ += '{';
        for (size_t i = 0; i < entries.size(); ++i) {
          if (i) out_ += style_.item_separator;
          newline(level + 1);
          append_string(out_, entries[i]->first, style_.ensure_ascii);
          out_ += style_.key_separator;
          write(entries[i]->second, level + 1);
        }
        newline(level);
        out_ += '}';
        return;
      }
      case Value::Type::kUndefined:
      case Value::Type::kCallable:
        site_.fail("TypeError: Object of type " + v.type_repr() + " is not JSON serializable");
    }
  }

  std::string take() { return std::move(out_); }

 private:
  void newline(int level) {
    if (style_.indent < 0) return;
    out_ += '\n';
    out_.append(static_cast<size_t>(style_.indent) * static_cast<size_t>(level), ' ');
  }

  const JsonStyle& style_;
  const CallSite& site_;
  std::string out_;
};

}  // namespace

std::string to_json_text(const Value& value, const JsonStyle& style, const CallSite& site) {
  Writer w(style, site);
  w.write(value, 0);
  std::string out = w.take();
  site.check_size(out.size());
  return out;
}

}  // namespace kr::jinja
