#include "server/toml_subset.h"

#include <cctype>
#include <set>

#include "base/parse_number.h"

namespace kr {
namespace {

class Reader {
 public:
  Reader(std::string_view text, const std::string& file) : text_(text), file_(file) {}

  StatusOr<TomlDocument> read() {
    TomlDocument doc;
    TomlTable* table = &doc.root;
    std::set<std::string> plain_tables;  // [name] seen
    std::set<std::string> keys;          // of the current table
    while (pos_ < text_.size()) {
      ++line_;
      const size_t eol = text_.find('\n', pos_);
      std::string_view l = text_.substr(pos_, eol == std::string_view::npos ? std::string_view::npos : eol - pos_);
      pos_ = eol == std::string_view::npos ? text_.size() : eol + 1;
      if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
      cur_ = l;
      at_ = 0;
      skip_space();
      if (done() || peek() == '#') continue;
      if (peek() == '[') {
        const bool array = cur_.substr(at_, 2) == "[[";
        at_ += array ? 2 : 1;
        skip_space();
        std::string name;
        if (!read_key(&name)) return error("expected a table name");
        skip_space();
        if (!done() && peek() == '.') return error("dotted table names are not supported");
        if (cur_.substr(at_, array ? 2 : 1) != (array ? "]]" : "]"))
          return error(std::string("expected '") + (array ? "]]" : "]") + "' after the table name");
        at_ += array ? 2 : 1;
        if (Status s = end_of_line(); !s.ok()) return s;
        if (!array && !plain_tables.insert(name).second) return error("table [" + name + "] is defined twice");
        for (const TomlTable& t : doc.tables)
          if (t.name == name && t.array != array)
            return error("'" + name + "' is used both as [" + name + "] and [[" + name + "]]");
        doc.tables.push_back(TomlTable{name, array, line_, {}});
        table = &doc.tables.back();
        keys.clear();
        continue;
      }
      std::string key;
      if (!read_key(&key)) return error("expected a key, a [table] or a comment");
      skip_space();
      if (!done() && peek() == '.') return error("dotted keys are not supported");
      if (done() || peek() != '=') return error("expected '=' after the key '" + key + "'");
      ++at_;
      skip_space();
      TomlValue v;
      v.line = line_;
      if (Status s = read_value(&v); !s.ok()) return s;
      if (Status s = end_of_line(); !s.ok()) return s;
      if (!keys.insert(key).second) return error("the key '" + key + "' is given twice in this table");
      table->entries.emplace_back(std::move(key), std::move(v));
    }
    return doc;
  }

 private:
  bool done() const { return at_ >= cur_.size(); }
  char peek() const { return cur_[at_]; }
  void skip_space() {
    while (!done() && (peek() == ' ' || peek() == '\t')) ++at_;
  }
  Status error(const std::string& what) const {
    return InvalidArgument(file_ + ":" + std::to_string(line_) + ": " + what);
  }
  Status end_of_line() {
    skip_space();
    if (done() || peek() == '#') return Status::Ok();
    return error("unexpected '" + std::string(cur_.substr(at_)) + "' after the value");
  }

  static bool bare_key_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  }

  bool read_key(std::string* out) {
    if (done()) return false;
    if (peek() == '"' || peek() == '\'') {
      TomlValue v;
      if (!read_string(&v).ok() || v.str.empty()) return false;
      *out = v.str;
      return true;
    }
    const size_t start = at_;
    while (!done() && bare_key_char(peek())) ++at_;
    if (at_ == start) return false;
    *out = std::string(cur_.substr(start, at_ - start));
    return true;
  }

  static void append_utf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xC0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      *out += static_cast<char>(0xE0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      *out += static_cast<char>(0xF0 | (cp >> 18));
      *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  Status read_string(TomlValue* v) {
    const char quote = peek();
    if (cur_.substr(at_, 3) == std::string(3, quote)) return error("multi-line strings are not supported");
    ++at_;
    v->kind = TomlValue::kString;
    std::string s;
    while (true) {
      if (done()) return error("unterminated string");
      const char c = peek();
      ++at_;
      if (c == quote) break;
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') return error("control character in a string");
      if (c != '\\' || quote == '\'') {
        s += c;
        continue;
      }
      if (done()) return error("unterminated string");
      const char e = peek();
      ++at_;
      switch (e) {
        case '"': s += '"'; break;
        case '\\': s += '\\'; break;
        case 'b': s += '\b'; break;
        case 't': s += '\t'; break;
        case 'n': s += '\n'; break;
        case 'f': s += '\f'; break;
        case 'r': s += '\r'; break;
        case 'u':
        case 'U': {
          const size_t n = e == 'u' ? 4 : 8;
          if (at_ + n > cur_.size()) return error("short \\" + std::string(1, e) + " escape");
          uint32_t cp = 0;
          for (size_t i = 0; i < n; ++i) {
            const char h = cur_[at_ + i];
            cp <<= 4;
            if (h >= '0' && h <= '9') cp |= static_cast<uint32_t>(h - '0');
            else if (h >= 'a' && h <= 'f') cp |= static_cast<uint32_t>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') cp |= static_cast<uint32_t>(h - 'A' + 10);
            else return error("bad hex digit in a \\" + std::string(1, e) + " escape");
          }
          at_ += n;
          if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return error("escape is not a Unicode scalar value");
          append_utf8(cp, &s);
          break;
        }
        default: return error(std::string("unknown escape \\") + e);
      }
    }
    v->str = std::move(s);
    return Status::Ok();
  }

  Status read_value(TomlValue* v) {
    if (done()) return error("expected a value after '='");
    const char c = peek();
    if (c == '"' || c == '\'') return read_string(v);
    if (c == '[') return error("arrays are not supported");
    if (c == '{') return error("inline tables are not supported");
    const size_t start = at_;
    while (!done() && peek() != ' ' && peek() != '\t' && peek() != '#') ++at_;
    const std::string_view word = cur_.substr(start, at_ - start);
    if (word.empty()) return error("expected a value after '='");
    if (word == "true" || word == "false") {
      v->kind = TomlValue::kBool;
      v->boolean = word == "true";
      v->str = std::string(word);
      return Status::Ok();
    }
    // Numbers: '_' only between digits.
    std::string digits;
    for (size_t i = 0; i < word.size(); ++i) {
      if (word[i] == '_') {
        const bool ok = i > 0 && i + 1 < word.size() && std::isdigit(static_cast<unsigned char>(word[i - 1])) &&
                        std::isdigit(static_cast<unsigned char>(word[i + 1]));
        if (!ok) return error("'_' must stand between digits in '" + std::string(word) + "'");
        continue;
      }
      digits += word[i];
    }
    const std::string_view body = digits.size() > 0 && (digits[0] == '+' || digits[0] == '-')
                                      ? std::string_view(digits).substr(1)
                                      : std::string_view(digits);
    if (body.size() > 1 && body[0] == '0' && std::isdigit(static_cast<unsigned char>(body[1])))
      return error("leading zeros are not allowed in '" + std::string(word) + "'");
    if (body.size() > 1 && body[0] == '0' && (body[1] == 'x' || body[1] == 'o' || body[1] == 'b'))
      return error("hex, octal and binary numbers are not supported");
    const std::string text = digits[0] == '+' ? digits.substr(1) : digits;
    int64_t i = 0;
    if (parse_int(text, INT64_MIN, INT64_MAX, &i)) {
      v->kind = TomlValue::kInteger;
      v->integer = i;
      v->number = static_cast<double>(i);
      v->str = text;
      return Status::Ok();
    }
    double d = 0;
    const bool digit_first = !body.empty() && std::isdigit(static_cast<unsigned char>(body[0]));
    const size_t dot = body.find('.');
    const bool dot_ok = dot == std::string_view::npos ||
                        (dot + 1 < body.size() && std::isdigit(static_cast<unsigned char>(body[dot + 1])));
    if (digit_first && dot_ok && parse_double(text, -1.7e308, 1.7e308, &d)) {
      v->kind = TomlValue::kFloat;
      v->number = d;
      v->str = text;
      return Status::Ok();
    }
    if (word == "inf" || word == "nan" || word == "+inf" || word == "-inf" || word == "+nan" || word == "-nan")
      return error("inf and nan are not supported");
    return error("'" + std::string(word) + "' is not a value (strings need quotes)");
  }

  std::string_view text_;
  const std::string& file_;
  size_t pos_ = 0;
  int line_ = 0;
  std::string_view cur_;
  size_t at_ = 0;
};

}  // namespace

StatusOr<TomlDocument> parse_toml_subset(std::string_view text, const std::string& file) {
  return Reader(text, file).read();
}

const char* toml_kind_name(TomlValue::Kind kind) {
  switch (kind) {
    case TomlValue::kString: return "a string";
    case TomlValue::kInteger: return "an integer";
    case TomlValue::kFloat: return "a number";
    case TomlValue::kBool: return "a boolean";
  }
  return "a value";
}

}  // namespace kr
