#include "tokenizer/jinja/lexer.h"

#include <cctype>
#include <cstdint>

#include "tokenizer/jinja/error.h"

namespace kr::jinja {
namespace {

bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      size_t open = find_tag_open(pos_);
      size_t text_start = pos_;
      std::string text(src_.substr(pos_, open - pos_));
      if (strip_next_text_) {
        size_t i = 0;
        while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
        text.erase(0, i);
        strip_next_text_ = false;
      }
      if (open == src_.size()) {
        emit_text(std::move(text), text_start);
        pos_ = open;
        break;
      }
      char kind = src_[open + 1];  // '{', '%' or '#'
      char modifier = open + 2 < src_.size() ? src_[open + 2] : '\0';
      if (modifier == '-') {
        size_t end = text.size();
        while (end > 0 && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
        text.resize(end);
      } else if (modifier != '+' && kind != '{') {
        lstrip(text, text_start);
      }
      emit_text(std::move(text), text_start);
      pos_ = open + 2 + ((modifier == '-' || modifier == '+') ? 1 : 0);
      if (kind == '#') {
        lex_comment();
      } else if (kind == '{') {
        push(TokenType::kVarBegin, "{{");
        lex_tag_body('}');
      } else {
        if (try_raw()) continue;
        push(TokenType::kBlockBegin, "{%");
        lex_tag_body('%');
      }
    }
    push(TokenType::kEnd, "");
    return std::move(tokens_);
  }

 private:
  size_t find_tag_open(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return src_.size();
  }

  // lstrip_blocks: drop spaces/tabs between the start of the line and a block tag.
  void lstrip(std::string& text, size_t text_start) const {
    size_t line_start = text.rfind('\n');
    size_t from;
    if (line_start != std::string::npos) {
      from = line_start + 1;
    } else if (text_start == 0 || src_[text_start - 1] == '\n') {
      from = 0;
    } else {
      return;
    }
    for (size_t i = from; i < text.size(); ++i) {
      if (text[i] != ' ' && text[i] != '\t') return;
    }
    text.resize(from);
  }

  void emit_text(std::string text, size_t text_start) {
    if (!text.empty()) tokens_.push_back({TokenType::kText, std::move(text), line_at(text_start)});
  }

  int line_at(size_t pos) {
    // Lines are counted incrementally: positions only move forward.
    for (; line_pos_ < pos && line_pos_ < src_.size(); ++line_pos_) {
      if (src_[line_pos_] == '\n') ++line_;
    }
    return line_;
  }

  void push(TokenType type, std::string value) { tokens_.push_back({type, std::move(value), line_at(pos_)}); }

  // After a tag end: "-" strips all following whitespace; trim_blocks drops one newline.
  void after_tag_end(char modifier, bool is_block) {
    if (modifier == '-') {
      strip_next_text_ = true;
    } else if (is_block && modifier != '+' && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
    }
  }

  void lex_comment() {
    size_t end = src_.find("#}", pos_);
    if (end == std::string_view::npos) throw TemplateError("unterminated comment", line_at(pos_));
    char modifier = end > pos_ && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : '\0';
    pos_ = end + 2;
    after_tag_end(modifier, /*is_block=*/true);
  }

  // {% raw %}...{% endraw %}: the body is text, not parsed.
  bool try_raw() {
    size_t p = pos_;
    while (p < src_.size() && std::isspace(static_cast<unsigned char>(src_[p]))) ++p;
    if (src_.substr(p, 3) != "raw" || (p + 3 < src_.size() && is_name_char(src_[p + 3]))) return false;
    p += 3;
    while (p < src_.size() && std::isspace(static_cast<unsigned char>(src_[p]))) ++p;
    char open_mod = '\0';
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) open_mod = src_[p++];
    if (src_.substr(p, 2) != "%}") return false;
    p += 2;
    pos_ = p;
    after_tag_end(open_mod, true);
    size_t search = pos_;
    while (true) {
      size_t open = src_.find("{%", search);
      if (open == std::string_view::npos) throw TemplateError("unterminated raw block", line_at(pos_));
      size_t q = open + 2;
      char mod = '\0';
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) mod = src_[q++];
      while (q < src_.size() && std::isspace(static_cast<unsigned char>(src_[q]))) ++q;
      if (src_.substr(q, 6) == "endraw") {
        q += 6;
        while (q < src_.size() && std::isspace(static_cast<unsigned char>(src_[q]))) ++q;
        char close_mod = '\0';
        if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) close_mod = src_[q++];
        if (src_.substr(q, 2) == "%}") {
          std::string body(src_.substr(pos_, open - pos_));
          if (strip_next_text_) {
            size_t i = 0;
            while (i < body.size() && std::isspace(static_cast<unsigned char>(body[i]))) ++i;
            body.erase(0, i);
            strip_next_text_ = false;
          }
          if (mod == '-') {
            while (!body.empty() && std::isspace(static_cast<unsigned char>(body.back()))) body.pop_back();
          }
          emit_text(std::move(body), pos_);
          pos_ = q + 2;
          after_tag_end(close_mod, true);
          return true;
        }
      }
      search = open + 2;
    }
  }

  // Lexes expression tokens until the closing "}}" / "%}" at bracket depth 0.
  void lex_tag_body(char close) {
    int depth = 0;
    int start_line = line_at(pos_);
    while (true) {
      while (pos_ < src_.size() && std::isspace(static_cast<unsigned char>(src_[pos_]))) ++pos_;
      if (pos_ >= src_.size()) throw TemplateError("unterminated tag", start_line);
      char c = src_[pos_];
      if (depth == 0) {
        size_t p = pos_;
        char modifier = '\0';
        if ((c == '-' || c == '+') && p + 1 < src_.size()) {
          modifier = c;
          ++p;
        }
        if (src_[p] == close && p + 1 < src_.size() && src_[p + 1] == '}') {
          pos_ = p + 2;
          push(close == '}' ? TokenType::kVarEnd : TokenType::kBlockEnd, close == '}' ? "}}" : "%}");
          after_tag_end(modifier, close == '%');
          return;
        }
      }
      if (is_name_start(c)) {
        size_t s = pos_;
        while (pos_ < src_.size() && is_name_char(src_[pos_])) ++pos_;
        push(TokenType::kName, std::string(src_.substr(s, pos_ - s)));
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        lex_number();
      } else if (c == '\'' || c == '"') {
        lex_string(c);
      } else {
        static const char* kTwoChar[] = {"==", "!=", "<=", ">=", "//", "**"};
        const char* two_char = nullptr;
        for (const char* two : kTwoChar) {
          if (src_.substr(pos_, 2) == std::string_view(two)) two_char = two;
        }
        const std::string op = two_char ? std::string(two_char, 2) : std::string(1, c);
        if (op.size() == 1 && std::string_view("+-*/%~<>()[]{}.,:|=!").find(c) == std::string_view::npos) {
          throw TemplateError(std::string("unexpected character '") + c + "'", line_at(pos_));
        }
        if (op == "(" || op == "[" || op == "{") ++depth;
        if (op == ")" || op == "]" || op == "}") --depth;
        if (depth < 0) throw TemplateError("unbalanced '" + op + "'", line_at(pos_));
        push(TokenType::kOperator, op);
        pos_ += op.size();
      }
    }
  }

  void lex_number() {
    size_t s = pos_;
    bool is_float = false;
    while (pos_ < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
      is_float = true;
      ++pos_;
      while (pos_ < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t p = pos_ + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (p < src_.size() && std::isdigit(static_cast<unsigned char>(src_[p]))) {
        is_float = true;
        pos_ = p;
        while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
      }
    }
    std::string text;
    for (char ch : src_.substr(s, pos_ - s)) {
      if (ch != '_') text += ch;
    }
    push(is_float ? TokenType::kFloat : TokenType::kInt, text);
  }

  // Python-style escapes, as Jinja decodes string literals ("unicode-escape").
  void lex_string(char quote) {
    int start_line = line_at(pos_);
    ++pos_;
    std::string out;
    while (true) {
      if (pos_ >= src_.size()) throw TemplateError("unterminated string literal", start_line);
      char c = src_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= src_.size()) throw TemplateError("unterminated string literal", start_line);
      char e = src_[pos_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '0': out += '\0'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\n': break;  // line continuation
        case 'x':
        case 'u':
        case 'U': {
          size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (pos_ + n > src_.size()) throw TemplateError("truncated \\" + std::string(1, e) + " escape", start_line);
          uint32_t cp = 0;
          for (size_t i = 0; i < n; ++i) {
            char h = src_[pos_ + i];
            if (!std::isxdigit(static_cast<unsigned char>(h))) {
              throw TemplateError("bad \\" + std::string(1, e) + " escape", start_line);
            }
            cp = cp * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
          }
          if (cp > 0x10ffff) throw TemplateError("escape out of Unicode range", start_line);
          pos_ += n;
          append_utf8(out, cp);
          break;
        }
        default:
          out += '\\';
          out += e;
      }
    }
    push(TokenType::kString, std::move(out));
  }

  std::string_view src_;
  size_t pos_ = 0;
  size_t line_pos_ = 0;
  int line_ = 1;
  bool strip_next_text_ = false;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) {
  // Like Jinja: newlines normalise to "\n", and one trailing newline of the
  // source is dropped (keep_trailing_newline=False, transformers' setting).
  std::string normalized;
  normalized.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      normalized += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      normalized += source[i];
    }
  }
  if (!normalized.empty() && normalized.back() == '\n') normalized.pop_back();
  return Lexer(normalized).run();
}

}  // namespace kr::jinja
