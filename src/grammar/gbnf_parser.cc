#include "grammar/gbnf_parser.h"

#include <string>
#include <unordered_map>
#include <vector>

#include "grammar/utf8.h"

namespace kr::grammar {

namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

class GbnfParser {
 public:
  GbnfParser(std::string_view text, const GbnfLimits& limits) : s_(text), limits_(limits) {}

  StatusOr<Grammar> parse(std::vector<GbnfExternalRule>* externals) {
    std::vector<uint8_t> external_rule;
    if (externals) {
      for (GbnfExternalRule& e : *externals) {
        for (char c : e.name) {
          if (!is_name_char(c)) return InvalidArgument("bad external rule name '" + e.name + "'");
        }
        if (ids_.count(e.name)) return InvalidArgument("external rule '" + e.name + "' given twice");
        e.rule = rule_id(e.name);
        defined_[e.rule] = 2;  // defined elsewhere
      }
    }
    if (s_.size() > limits_.max_bytes) {
      return InvalidArgument("GBNF grammar is too large (" + std::to_string(s_.size()) + " bytes, limit " +
                             std::to_string(limits_.max_bytes) + ")");
    }
    if (!is_valid_utf8(s_)) return InvalidArgument("GBNF grammar is not valid UTF-8");
    skip_space(true);
    while (pos_ < s_.size()) {
      KR_RETURN_IF_ERROR(parse_rule());
      skip_space(true);
    }
    auto root_it = ids_.find("root");
    if (root_it == ids_.end() || !defined_[root_it->second]) return InvalidArgument("GBNF grammar has no 'root' rule");
    const uint32_t root = root_it->second;
    for (size_t r = 0; r < g_.rules().size(); ++r) {
      if (g_.rules()[r].body == kNoExpr && defined_[r] != 2) {
        return InvalidArgument("GBNF grammar uses undefined rule '" + g_.rules()[r].name + "'");
      }
    }
    g_.set_root(root);
    return std::move(g_);
  }

 private:
  Status error(const std::string& what) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos_ && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return InvalidArgument("GBNF error at line " + std::to_string(line) + ", column " + std::to_string(col) + ": " +
                           what);
  }
  char peek(size_t k = 0) const { return pos_ + k < s_.size() ? s_[pos_ + k] : '\0'; }
  bool at_end() const { return pos_ >= s_.size(); }

  // Skips blanks and comments; newlines too when `newlines`.
  void skip_space(bool newlines) {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == ' ' || c == '\t' || (newlines && (c == '\n' || c == '\r'))) {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n' && s_[pos_] != '\r') ++pos_;
      } else {
        break;
      }
    }
  }

  uint32_t rule_id(const std::string& name) {
    auto it = ids_.find(name);
    if (it != ids_.end()) return it->second;
    uint32_t id = g_.add_rule(name);
    ids_.emplace(name, id);
    defined_.push_back(0);
    return id;
  }

  Status parse_rule() {
    size_t start = pos_;
    while (is_name_char(peek())) ++pos_;
    if (pos_ == start) return error("expecting a rule name");
    std::string name(s_.substr(start, pos_ - start));
    skip_space(false);
    if (!(peek() == ':' && peek(1) == ':' && peek(2) == '=')) return error("expecting '::=' after rule name");
    pos_ += 3;
    skip_space(true);
    uint32_t id = rule_id(name);
    if (defined_[id] == 2) return error("rule '" + name + "' is defined outside the grammar text");
    if (defined_[id]) return error("rule '" + name + "' is defined twice");
    defined_[id] = 1;
    auto body = parse_alternates(false, 0);
    if (!body.ok()) return body.status();
    g_.set_rule_body(id, *body);
    if (at_end()) return Status::Ok();
    if (peek() == '\r') ++pos_;
    if (peek() == '\n') {
      ++pos_;
      return Status::Ok();
    }
    return error(std::string("unexpected '") + peek() + "'");
  }

  StatusOr<ExprId> parse_alternates(bool nested, uint32_t depth) {
    if (depth > limits_.max_nesting) return error("parentheses nest too deeply");
    std::vector<ExprId> alts;
    for (;;) {
      auto seq = parse_sequence(nested, depth);
      if (!seq.ok()) return seq.status();
      alts.push_back(*seq);
      if (peek() != '|') break;
      ++pos_;
      skip_space(true);
    }
    return g_.alt(alts);
  }

  StatusOr<ExprId> parse_sequence(bool nested, uint32_t depth) {
    std::vector<ExprId> items;
    bool have_item = false;
    for (;;) {
      char c = peek();
      ExprId item;
      if (c == '"') {
        ++pos_;
        std::vector<ExprId> chars;
        while (peek() != '"') {
          if (at_end()) return error("unterminated string literal");
          uint32_t cp;
          KR_RETURN_IF_ERROR(parse_char(cp));
          std::string bytes;
          append_utf8(bytes, cp);
          chars.push_back(g_.literal(bytes));
        }
        ++pos_;
        item = g_.seq(chars);
      } else if (c == '[') {
        ++pos_;
        bool negated = false;
        if (peek() == '^') {
          negated = true;
          ++pos_;
        }
        std::vector<CodepointRange> ranges;
        while (peek() != ']') {
          if (at_end()) return error("unterminated character class");
          uint32_t lo, hi;
          KR_RETURN_IF_ERROR(parse_char(lo));
          hi = lo;
          if (peek() == '-' && peek(1) != ']' && pos_ + 1 < s_.size()) {
            ++pos_;
            KR_RETURN_IF_ERROR(parse_char(hi));
            if (hi < lo) return error("character range is reversed");
          }
          ranges.push_back({lo, hi});
        }
        ++pos_;
        auto norm = normalize_ranges(std::move(ranges));
        if (negated) norm = complement_ranges(norm);
        item = codepoint_class_expr(g_, norm);
      } else if (c == '.') {
        ++pos_;
        item = codepoint_class_expr(g_, {{0, kMaxCodepoint}});
      } else if (c == '(') {
        ++pos_;
        skip_space(true);
        auto inner = parse_alternates(true, depth + 1);
        if (!inner.ok()) return inner.status();
        if (peek() != ')') return error("expecting ')'");
        ++pos_;
        item = *inner;
      } else if (c == '<') {
        auto tok = parse_token_terminal();
        if (!tok.ok()) return tok.status();
        item = *tok;
      } else if (c == '!') {
        return error("negated token terminals (!<...>) are not supported");
      } else if (is_name_char(c)) {
        size_t start = pos_;
        while (is_name_char(peek())) ++pos_;
        std::string name(s_.substr(start, pos_ - start));
        // `name ::=` starts the next rule: the current one ended at a newline
        // (only reachable after a `|` continued it); stop here.
        item = g_.rule_ref(rule_id(name));
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        if (!have_item) return error(std::string("'") + c + "' must follow an item");
        uint32_t min = 0, max = kUnbounded;
        if (c == '*') {
          ++pos_;
        } else if (c == '+') {
          min = 1;
          ++pos_;
        } else if (c == '?') {
          max = 1;
          ++pos_;
        } else {
          ++pos_;
          skip_space(nested);
          KR_RETURN_IF_ERROR(parse_int(min));
          skip_space(nested);
          if (peek() == '}') {
            max = min;
          } else if (peek() == ',') {
            ++pos_;
            skip_space(nested);
            if (peek() >= '0' && peek() <= '9') {
              KR_RETURN_IF_ERROR(parse_int(max));
              skip_space(nested);
            }
            if (peek() != '}') return error("expecting '}'");
          } else {
            return error("expecting ',' or '}' in repetition");
          }
          ++pos_;
          if (max != kUnbounded && max < min) return error("repetition maximum is below its minimum");
        }
        items.back() = g_.repeat(items.back(), min, max);
        skip_space(nested);
        continue;
      } else {
        break;
      }
      items.push_back(item);
      have_item = true;
      skip_space(nested);
    }
    return g_.seq(items);
  }

  Status parse_int(uint32_t& out) {
    if (!(peek() >= '0' && peek() <= '9')) return error("expecting a number");
    uint64_t v = 0;
    while (peek() >= '0' && peek() <= '9') {
      v = v * 10 + static_cast<uint64_t>(peek() - '0');
      if (v > limits_.max_repeat) return error("repetition count above " + std::to_string(limits_.max_repeat));
      ++pos_;
    }
    out = static_cast<uint32_t>(v);
    return Status::Ok();
  }

  Status parse_hex(int digits, uint32_t& out) {
    out = 0;
    for (int i = 0; i < digits; ++i) {
      char c = peek();
      uint32_t d;
      if (c >= '0' && c <= '9') {
        d = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        d = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        d = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return error("expecting " + std::to_string(digits) + " hex digits");
      }
      out = out * 16 + d;
      ++pos_;
    }
    return Status::Ok();
  }

  Status parse_char(uint32_t& cp) {
    if (peek() == '\\') {
      ++pos_;
      char e = peek();
      ++pos_;
      switch (e) {
        case 'x': KR_RETURN_IF_ERROR(parse_hex(2, cp)); break;
        case 'u': KR_RETURN_IF_ERROR(parse_hex(4, cp)); break;
        case 'U': KR_RETURN_IF_ERROR(parse_hex(8, cp)); break;
        case 't': cp = '\t'; break;
        case 'r': cp = '\r'; break;
        case 'n': cp = '\n'; break;
        case 'f': cp = '\f'; break;
        case 'v': cp = '\v'; break;
        case '\\':
        case '"':
        case '[':
        case ']':
        case '-':
        case '^':
        case '/':
        case '\'': cp = static_cast<uint8_t>(e); break;
        default: --pos_; return error(std::string("unknown escape '\\") + e + "'");
      }
      if (cp > kMaxCodepoint || (cp >= 0xD800 && cp <= 0xDFFF)) return error("escape is not a Unicode scalar value");
      return Status::Ok();
    }
    size_t p = pos_;
    if (!decode_utf8(s_, p, cp)) return error("invalid UTF-8");
    pos_ = p;
    return Status::Ok();
  }

  StatusOr<ExprId> parse_token_terminal() {
    size_t start = pos_;
    if (peek(1) == '[') {
      pos_ += 2;
      uint64_t id = 0;
      size_t digits = 0;
      while (peek() >= '0' && peek() <= '9') {
        id = id * 10 + static_cast<uint64_t>(peek() - '0');
        if (id > 0x7FFFFFFF) return error("token id is too large");
        ++pos_;
        ++digits;
      }
      if (digits == 0 || peek() != ']' || peek(1) != '>') return error("expecting a token id like <[123]>");
      pos_ += 2;
      return g_.token({static_cast<int32_t>(id), ""});
    }
    while (!at_end() && peek() != '>' && peek() != '\n') ++pos_;
    if (peek() != '>') {
      pos_ = start;
      return error("unterminated token terminal '<...>'");
    }
    ++pos_;
    return g_.token({-1, std::string(s_.substr(start, pos_ - start))});
  }

  std::string_view s_;
  const GbnfLimits& limits_;
  size_t pos_ = 0;
  Grammar g_;
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<uint8_t> defined_;
};

}  // namespace

StatusOr<Grammar> parse_gbnf(std::string_view text, const GbnfLimits& limits, std::vector<GbnfExternalRule>* externals) {
  GbnfParser p(text, limits);
  return p.parse(externals);
}

}  // namespace kr::grammar
