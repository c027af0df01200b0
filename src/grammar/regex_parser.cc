#include "grammar/regex_parser.h"

#include <string>
#include <vector>

#include "grammar/utf8.h"

namespace kr::grammar {

ExprId json_char_class_expr(Grammar& g, const std::vector<CodepointRange>& ranges) {
  // Raw: everything except '"', '\' and U+0000..U+001F.
  std::vector<CodepointRange> raw;
  std::vector<ExprId> alts;
  auto contains = [&](uint32_t cp) {
    for (const auto& r : ranges) {
      if (cp >= r.lo && cp <= r.hi) return true;
    }
    return false;
  };
  for (const auto& r : ranges) {
    uint32_t lo = r.lo;
    while (lo <= r.hi) {
      if (lo < 0x20) {
        lo = 0x20;
        continue;
      }
      uint32_t hi = r.hi;
      if (lo <= '"' && hi >= '"') {
        if (lo < '"') raw.push_back({lo, '"' - 1});
        lo = '"' + 1;
        continue;
      }
      if (lo <= '\\' && hi >= '\\') {
        if (lo < '\\') raw.push_back({lo, '\\' - 1});
        lo = '\\' + 1;
        continue;
      }
      raw.push_back({lo, hi});
      if (hi == kMaxCodepoint) break;
      lo = hi + 1;
    }
  }
  alts.push_back(codepoint_class_expr(g, normalize_ranges(raw)));
  if (contains('"')) alts.push_back(g.literal("\\\""));
  if (contains('\\')) alts.push_back(g.literal("\\\\"));
  static const char* kHex = "0123456789abcdef";
  for (uint32_t c = 0; c < 0x20; ++c) {
    if (!contains(c)) continue;
    switch (c) {
      case '\b': alts.push_back(g.literal("\\b")); break;
      case '\f': alts.push_back(g.literal("\\f")); break;
      case '\n': alts.push_back(g.literal("\\n")); break;
      case '\r': alts.push_back(g.literal("\\r")); break;
      case '\t': alts.push_back(g.literal("\\t")); break;
      default: {
        std::string esc = "\\u00";
        esc.push_back(kHex[c >> 4]);
        esc.push_back(kHex[c & 15]);
        alts.push_back(g.literal(esc));
      }
    }
  }
  return g.alt(alts);
}

namespace {

const std::vector<CodepointRange> kDigit = {{'0', '9'}};
const std::vector<CodepointRange> kWord = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
const std::vector<CodepointRange> kSpace = {{'\t', '\r'}, {' ', ' '}};
// Negations stay inside ASCII (see the header): non-digits, non-word, and the
// printable non-space characters.
const std::vector<CodepointRange> kNotDigit = {{0, '/'}, {':', 0x7F}};
const std::vector<CodepointRange> kNotWord = {{0, '/'}, {':', '@'}, {'[', '^'}, {'`', '`'}, {'{', 0x7F}};
const std::vector<CodepointRange> kNotSpace = {{0x21, 0x7E}};

class RegexParser {
 public:
  RegexParser(Grammar& g, std::string_view s, const RegexOptions& o) : g_(g), s_(s), o_(o) {}

  StatusOr<ExprId> parse() {
    if (s_.size() > o_.max_bytes) return InvalidArgument("regex is too long");
    if (!is_valid_utf8(s_)) return InvalidArgument("regex is not valid UTF-8");
    // Top level: alternatives, each with its own anchors.
    std::vector<ExprId> alts;
    for (;;) {
      bool start_anchor = false, end_anchor = false;
      if (peek() == '^') {
        start_anchor = true;
        ++pos_;
      } else if (peek() == '\\' && peek(1) == 'A') {
        start_anchor = true;
        pos_ += 2;
      }
      auto body = parse_sequence(0, &end_anchor);
      if (!body.ok()) return body.status();
      ExprId e = *body;
      if (o_.search) {
        ExprId any = g_.star(char_expr({{0, kMaxCodepoint}}));
        std::vector<ExprId> parts;
        if (!start_anchor) parts.push_back(any);
        parts.push_back(e);
        if (!end_anchor) parts.push_back(any);
        e = g_.seq(parts);
      }
      alts.push_back(e);
      if (peek() == '|') {
        ++pos_;
        continue;
      }
      break;
    }
    if (pos_ < s_.size()) {
      if (peek() == ')') return error("unbalanced ')'");
      return error("unexpected character");
    }
    return g_.alt(alts);
  }

 private:
  Status error(const std::string& what) const {
    return InvalidArgument("regex error at offset " + std::to_string(pos_) + ": " + what);
  }
  Status unsupported(const std::string& what) const {
    return InvalidArgument("regex uses " + what + ", which is not supported");
  }
  char peek(size_t k = 0) const { return pos_ + k < s_.size() ? s_[pos_ + k] : '\0'; }
  bool at_end() const { return pos_ >= s_.size(); }

  ExprId char_expr(const std::vector<CodepointRange>& ranges) {
    auto norm = normalize_ranges(ranges);
    return o_.json_string ? json_char_class_expr(g_, norm) : codepoint_class_expr(g_, norm);
  }

  // A sequence up to '|' or ')' or the end. `end_anchor`: set when the
  // sequence ends with $ (only allowed at depth 0).
  StatusOr<ExprId> parse_sequence(uint32_t depth, bool* end_anchor) {
    std::vector<ExprId> items;
    for (;;) {
      if (at_end() || peek() == '|' || peek() == ')') break;
      char c = peek();
      if (c == '$' || (c == '\\' && (peek(1) == 'Z' || peek(1) == 'z'))) {
        pos_ += c == '$' ? 1 : 2;
        if (end_anchor && (at_end() || peek() == '|')) {
          *end_anchor = true;
          break;
        }
        return unsupported("an end anchor that is not at the end of the pattern");
      }
      if (c == '^' || (c == '\\' && peek(1) == 'A')) {
        return unsupported("a start anchor that is not at the start of the pattern");
      }
      auto atom = parse_atom(depth);
      if (!atom.ok()) return atom.status();
      ExprId e = *atom;
      // Quantifiers (several in a row apply in turn, as in Python).
      for (;;) {
        char q = peek();
        uint32_t min, max;
        if (q == '*') {
          min = 0, max = kUnbounded;
          ++pos_;
        } else if (q == '+') {
          min = 1, max = kUnbounded;
          ++pos_;
        } else if (q == '?') {
          min = 0, max = 1;
          ++pos_;
        } else if (q == '{' && try_counted(min, max)) {
          if (max != kUnbounded && max < min) return error("repetition maximum is below its minimum");
        } else {
          break;
        }
        if (peek() == '?') {
          ++pos_;  // lazy: same language
        } else if (peek() == '+') {
          return unsupported("a possessive quantifier");
        }
        if (min > o_.max_repeat || (max != kUnbounded && max > o_.max_repeat)) {
          return InvalidArgument("regex repetition count above " + std::to_string(o_.max_repeat));
        }
        e = g_.repeat(e, min, max);
        if (peek() == '*' || peek() == '+' || peek() == '?' || peek() == '{') {
          uint32_t a, b;
          size_t save = pos_;
          if (peek() != '{' || try_counted(a, b)) {
            pos_ = save;
            return error("multiple repeat");
          }
        }
      }
      items.push_back(e);
    }
    return g_.seq(items);
  }

  // {m}, {m,}, {m,n}, {,n}; false (position unchanged) when not a quantifier
  // (then '{' is a literal, as in Python).
  bool try_counted(uint32_t& min, uint32_t& max) {
    size_t p = pos_ + 1;
    auto number = [&](uint64_t& v) {
      size_t start = p;
      v = 0;
      while (p < s_.size() && s_[p] >= '0' && s_[p] <= '9') {
        v = v * 10 + static_cast<uint64_t>(s_[p] - '0');
        if (v > 0xFFFFFFF) v = 0xFFFFFFF;
        ++p;
      }
      return p > start;
    };
    uint64_t a = 0, b = 0;
    bool has_a = number(a);
    if (p < s_.size() && s_[p] == '}') {
      if (!has_a) return false;
      min = max = static_cast<uint32_t>(a);
      pos_ = p + 1;
      return true;
    }
    if (p >= s_.size() || s_[p] != ',') return false;
    ++p;
    bool has_b = number(b);
    if (p >= s_.size() || s_[p] != '}') return false;
    if (!has_a && !has_b) return false;
    min = static_cast<uint32_t>(a);
    max = has_b ? static_cast<uint32_t>(b) : kUnbounded;
    pos_ = p + 1;
    return true;
  }

  StatusOr<ExprId> parse_atom(uint32_t depth) {
    char c = peek();
    if (c == '(') {
      if (depth + 1 > o_.max_nesting) return error("groups nest too deeply");
      ++pos_;
      if (peek() == '?') {
        if (peek(1) == ':') {
          pos_ += 2;
        } else if (peek(1) == 'P' && peek(2) == '<') {
          pos_ += 3;
          KR_RETURN_IF_ERROR(skip_group_name());
        } else if (peek(1) == '<' && peek(2) != '=' && peek(2) != '!') {
          pos_ += 2;
          KR_RETURN_IF_ERROR(skip_group_name());
        } else if (peek(1) == '=' || peek(1) == '!' || (peek(1) == '<' && (peek(2) == '=' || peek(2) == '!'))) {
          return unsupported("a lookaround assertion");
        } else if (peek(1) == 'P' && peek(2) == '=') {
          return unsupported("a backreference");
        } else {
          return unsupported("inline flags or an extension group '(?" + std::string(1, peek(1)) + "'");
        }
      }
      std::vector<ExprId> alts;
      for (;;) {
        auto seq = parse_sequence(depth + 1, nullptr);
        if (!seq.ok()) return seq.status();
        alts.push_back(*seq);
        if (peek() == '|') {
          ++pos_;
          continue;
        }
        break;
      }
      if (peek() != ')') return error("missing ')'");
      ++pos_;
      return g_.alt(alts);
    }
    if (c == '[') return parse_class();
    if (c == '.') {
      // Any code point but the line terminators of ECMA-262 (\n \r U+2028
      // U+2029): valid under both ECMA's and Python's meaning of `.`.
      ++pos_;
      return char_expr({{0, '\n' - 1}, {'\n' + 1, '\r' - 1}, {'\r' + 1, 0x2027}, {0x202A, kMaxCodepoint}});
    }
    if (c == '*' || c == '+' || c == '?') return error("nothing to repeat");
    if (c == '{') {
      uint32_t a, b;
      if (try_counted(a, b)) return error("nothing to repeat");
      ++pos_;
      return char_expr({{'{', '{'}});
    }
    if (c == '\\') {
      std::vector<CodepointRange> ranges;
      KR_RETURN_IF_ERROR(parse_escape(ranges, false));
      return char_expr(ranges);
    }
    uint32_t cp;
    size_t p = pos_;
    if (!decode_utf8(s_, p, cp)) return error("invalid UTF-8");
    pos_ = p;
    return char_expr({{cp, cp}});
  }

  Status skip_group_name() {
    while (!at_end() && peek() != '>') ++pos_;
    if (at_end()) return error("unterminated group name");
    ++pos_;
    return Status::Ok();
  }

  Status parse_hex(size_t digits, uint32_t& out) {
    out = 0;
    for (size_t i = 0; i < digits; ++i) {
      char c = peek();
      uint32_t d;
      if (c >= '0' && c <= '9') {
        d = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        d = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        d = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return error("bad hex escape");
      }
      out = out * 16 + d;
      if (out > kMaxCodepoint) return error("escape above U+10FFFF");
      ++pos_;
    }
    return Status::Ok();
  }

  // After '\'. Appends the escape's code points; `in_class`: inside [...]
  // (where \b is a backspace). `shorthand` set for \d \w \s and negations.
  Status parse_escape(std::vector<CodepointRange>& out, bool in_class, bool* shorthand = nullptr) {
    ++pos_;
    if (at_end()) return error("pattern ends with '\\'");
    char e = peek();
    ++pos_;
    auto add = [&](const std::vector<CodepointRange>& r) {
      out.insert(out.end(), r.begin(), r.end());
      if (shorthand) *shorthand = true;
    };
    uint32_t cp;
    switch (e) {
      case 'd': add(kDigit); return Status::Ok();
      case 'D': add(kNotDigit); return Status::Ok();
      case 'w': add(kWord); return Status::Ok();
      case 'W': add(kNotWord); return Status::Ok();
      case 's': add(kSpace); return Status::Ok();
      case 'S': add(kNotSpace); return Status::Ok();
      case 'n': cp = '\n'; break;
      case 't': cp = '\t'; break;
      case 'r': cp = '\r'; break;
      case 'f': cp = '\f'; break;
      case 'v': cp = '\v'; break;
      case '0': cp = 0; break;
      case 'a': cp = 7; break;
      case 'x': KR_RETURN_IF_ERROR(parse_hex(2, cp)); break;
      case 'u':
        if (peek() == '{') {
          ++pos_;
          size_t start = pos_;
          while (!at_end() && peek() != '}') ++pos_;
          if (at_end() || pos_ == start || pos_ - start > 6) return error("bad \\u{...} escape");
          size_t end = pos_;
          pos_ = start;
          KR_RETURN_IF_ERROR(parse_hex(end - start, cp));
          ++pos_;
        } else {
          KR_RETURN_IF_ERROR(parse_hex(4, cp));
        }
        break;
      case 'U': KR_RETURN_IF_ERROR(parse_hex(8, cp)); break;
      case 'b':
        if (in_class) {
          cp = '\b';
          break;
        }
        return unsupported("a word boundary \\b");
      case 'B': return unsupported("\\B");
      case 'p':
      case 'P': return unsupported("a Unicode property escape \\" + std::string(1, e));
      case 'k': return unsupported("a backreference");
      default:
        if (e >= '1' && e <= '9') return unsupported("a backreference");
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) {
          return unsupported("the escape \\" + std::string(1, e));
        }
        {
          // Escaped punctuation or any other character: itself.
          size_t p = pos_ - 1;
          if (!decode_utf8(s_, p, cp)) return error("invalid UTF-8");
          pos_ = p;
        }
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) return error("escape is a surrogate code point");
    out.push_back({cp, cp});
    return Status::Ok();
  }

  StatusOr<ExprId> parse_class() {
    ++pos_;  // '['
    bool negated = false;
    if (peek() == '^') {
      negated = true;
      ++pos_;
    }
    if (peek() == '[' && peek(1) == ':') return unsupported("a POSIX character class");
    if (peek() == ']') {
      // "[]a]" is an empty class then "a]" in ECMA-262 but the class {']', 'a'}
      // in Python: refuse rather than guess.
      return unsupported("a ']' first in a class (ambiguous between regex dialects; write \\])");
    }
    std::vector<CodepointRange> ranges;
    bool shorthand = false;
    for (;;) {
      if (at_end()) return error("unterminated character class");
      if (peek() == ']') {
        ++pos_;
        break;
      }
      uint32_t lo;
      std::vector<CodepointRange> item;
      if (peek() == '\\') {
        bool sh = false;
        KR_RETURN_IF_ERROR(parse_escape(item, true, &sh));
        if (sh) {
          shorthand = true;
          ranges.insert(ranges.end(), item.begin(), item.end());
          if (peek() == '-' && peek(1) != ']') return error("a class shorthand cannot start a range");
          continue;
        }
        lo = item[0].lo;
      } else {
        size_t p = pos_;
        if (!decode_utf8(s_, p, lo)) return error("invalid UTF-8");
        pos_ = p;
      }
      uint32_t hi = lo;
      if (peek() == '-' && peek(1) != ']' && pos_ + 1 < s_.size()) {
        ++pos_;
        if (peek() == '\\') {
          std::vector<CodepointRange> item2;
          bool sh = false;
          KR_RETURN_IF_ERROR(parse_escape(item2, true, &sh));
          if (sh) return error("a class shorthand cannot end a range");
          hi = item2[0].lo;
        } else {
          size_t p = pos_;
          if (!decode_utf8(s_, p, hi)) return error("invalid UTF-8");
          pos_ = p;
        }
        if (hi < lo) return error("bad character range");
      }
      ranges.push_back({lo, hi});
    }
    auto norm = normalize_ranges(std::move(ranges));
    if (negated) {
      norm = complement_ranges(norm);
      if (shorthand) {
        // Keep the negation inside ASCII (see the header).
        std::vector<CodepointRange> ascii;
        for (auto r : norm) {
          if (r.lo <= 0x7F) ascii.push_back({r.lo, std::min<uint32_t>(r.hi, 0x7F)});
        }
        norm = ascii;
      }
    }
    if (norm.empty()) return g_.nothing();
    return char_expr(norm);
  }

  Grammar& g_;
  std::string_view s_;
  const RegexOptions& o_;
  size_t pos_ = 0;
};

}  // namespace

StatusOr<ExprId> compile_regex(Grammar& g, std::string_view pattern, const RegexOptions& options) {
  RegexParser p(g, pattern, options);
  return p.parse();
}

}  // namespace kr::grammar
