#include "tokenizer/jinja/py_string.h"

#include <algorithm>
#include <cctype>
#include <string_view>
#include <cstdint>

#include "tokenizer/jinja/value.h"

namespace kr::jinja {

bool py_isspace(const std::string& ch) {
  if (ch.size() == 1) {
    unsigned char c = static_cast<unsigned char>(ch[0]);
    return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f);
  }
  static const char* kUnicodeSpaces[] = {
      "\xc2\x85", "\xc2\xa0", "\xe1\x9a\x80", "\xe2\x80\x80", "\xe2\x80\x81", "\xe2\x80\x82", "\xe2\x80\x83",
      "\xe2\x80\x84", "\xe2\x80\x85", "\xe2\x80\x86", "\xe2\x80\x87", "\xe2\x80\x88", "\xe2\x80\x89",
      "\xe2\x80\x8a", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\x9f", "\xe3\x80\x80",
  };
  for (const char* sp : kUnicodeSpaces) {
    if (ch == sp) return true;
  }
  return false;
}

namespace {

size_t char_len(unsigned char c) { return c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1; }

}  // namespace

// Works on byte offsets (no per-character allocation): strip runs on every
// message of a long conversation.
std::string py_strip(const std::string& s, const std::optional<std::string>& chars, bool left, bool right) {
  std::vector<std::string> set = chars ? utf8_chars(*chars) : std::vector<std::string>{};
  auto strip_it = [&](size_t pos, size_t len) {
    std::string_view c(s.data() + pos, len);
    if (!chars) {
      if (len == 1) {
        unsigned char u = static_cast<unsigned char>(c[0]);
        return u == ' ' || (u >= 0x09 && u <= 0x0d) || (u >= 0x1c && u <= 0x1f);
      }
      return py_isspace(std::string(c));
    }
    for (const auto& x : set) {
      if (x == c) return true;
    }
    return false;
  };
  size_t b = 0, e = s.size();
  if (left) {
    while (b < e) {
      size_t len = std::min(char_len(static_cast<unsigned char>(s[b])), e - b);
      if (!strip_it(b, len)) break;
      b += len;
    }
  }
  if (right) {
    while (e > b) {
      size_t start = e - 1;
      while (start > b && (static_cast<unsigned char>(s[start]) & 0xc0) == 0x80) --start;
      if (!strip_it(start, e - start)) break;
      e = start;
    }
  }
  return s.substr(b, e - b);
}

std::vector<std::string> py_split(const std::string& s, const std::optional<std::string>& sep, long maxsplit) {
  std::vector<std::string> out;
  if (sep) {
    size_t start = 0;
    while (maxsplit < 0 || static_cast<long>(out.size()) < maxsplit) {
      size_t p = s.find(*sep, start);
      if (p == std::string::npos) break;
      out.push_back(s.substr(start, p - start));
      start = p + sep->size();
    }
    out.push_back(s.substr(start));
    return out;
  }
  std::vector<std::string> cs = utf8_chars(s);
  size_t i = 0;
  while (i < cs.size()) {
    while (i < cs.size() && py_isspace(cs[i])) ++i;
    if (i == cs.size()) break;
    std::string word;
    if (maxsplit >= 0 && static_cast<long>(out.size()) >= maxsplit) {
      for (; i < cs.size(); ++i) word += cs[i];  // the remainder is kept as is
      out.push_back(word);
      break;
    }
    while (i < cs.size() && !py_isspace(cs[i])) word += cs[i++];
    out.push_back(word);
  }
  return out;
}

std::string py_replace(const std::string& s, const std::string& from, const std::string& to, long count,
                       size_t max_bytes, bool* too_big) {
  *too_big = false;
  std::string out;
  long done = 0;
  if (from.empty()) {  // Python inserts `to` before every character and at the end
    std::vector<std::string> cs = utf8_chars(s);
    for (size_t i = 0; i <= cs.size(); ++i) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      if (i < cs.size()) out += cs[i];
      if (out.size() > max_bytes) {
        *too_big = true;
        return {};
      }
    }
    return out;
  }
  size_t start = 0;
  while (count < 0 || done < count) {
    size_t p = s.find(from, start);
    if (p == std::string::npos) break;
    out.append(s, start, p - start);
    out += to;
    start = p + from.size();
    ++done;
    if (out.size() > max_bytes) {
      *too_big = true;
      return {};
    }
  }
  out.append(s, start, std::string::npos);
  if (out.size() > max_bytes) *too_big = true;
  return out;
}

size_t py_count(const std::string& s, const std::string& sub) {
  if (sub.empty()) return utf8_length(s) + 1;
  size_t n = 0;
  for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
  return n;
}

namespace {

uint32_t decode(const std::string& ch) {
  unsigned char c = static_cast<unsigned char>(ch[0]);
  if (ch.size() == 1) return c;
  uint32_t cp = ch.size() == 2 ? (c & 0x1f) : ch.size() == 3 ? (c & 0x0f) : (c & 0x07);
  for (size_t i = 1; i < ch.size(); ++i) cp = (cp << 6) | (static_cast<unsigned char>(ch[i]) & 0x3f);
  return cp;
}

void encode(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// Case pairs of the scripts chat text meets most (Latin-1, Latin Extended-A,
// Greek, Cyrillic); other code points keep their case.
uint32_t to_upper_cp(uint32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if (c < 0x80) return c;
  if (c >= 0xe0 && c <= 0xfe && c != 0xf7) return c - 32;
  if (c == 0xff) return 0x178;
  if ((c >= 0x100 && c <= 0x137) || (c >= 0x14a && c <= 0x177)) return c & ~1u;
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) return (c % 2 == 0) ? c - 1 : c;
  if (c == 0x3c2) return 0x3a3;
  if (c >= 0x3b1 && c <= 0x3c9) return c - 32;
  if (c >= 0x430 && c <= 0x44f) return c - 32;
  if (c >= 0x450 && c <= 0x45f) return c - 80;
  return c;
}

uint32_t to_lower_cp(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c < 0x80) return c;
  if (c >= 0xc0 && c <= 0xde && c != 0xd7) return c + 32;
  if (c == 0x178) return 0xff;
  if ((c >= 0x100 && c <= 0x137) || (c >= 0x14a && c <= 0x177)) return c | 1u;
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) return (c % 2 == 1) ? c + 1 : c;
  if (c >= 0x391 && c <= 0x3a9 && c != 0x3a2) return c + 32;
  if (c >= 0x410 && c <= 0x42f) return c + 32;
  if (c >= 0x400 && c <= 0x40f) return c + 80;
  return c;
}

std::string map_case(const std::string& s, bool upper) {
  std::string out;
  out.reserve(s.size());
  for (const std::string& ch : utf8_chars(s)) {
    uint32_t cp = decode(ch);
    if (cp >= 0x800) {  // beyond the mapped scripts: copy as is
      out += ch;
    } else if (upper && cp == 0xdf) {
      out += "SS";  // Python: 'ß'.upper() == 'SS'
    } else {
      uint32_t mapped = upper ? to_upper_cp(cp) : to_lower_cp(cp);
      if (mapped == cp) out += ch;
      else encode(out, mapped);
    }
  }
  return out;
}

}  // namespace

std::string py_upper(const std::string& s) { return map_case(s, true); }
std::string py_lower(const std::string& s) { return map_case(s, false); }

std::string ascii_lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string py_capitalize(const std::string& s) {
  std::string out = ascii_lower(s);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

std::string py_title(const std::string& s) {
  std::string out = s;
  bool prev_cased = false;
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalpha(u)) {
      c = static_cast<char>(prev_cased ? std::tolower(u) : std::toupper(u));
      prev_cased = true;
    } else {
      prev_cased = false;
    }
  }
  return out;
}

std::string jinja_title(const std::string& s) {
  std::string out = s;
  bool word_start = true;
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    bool delim = std::isspace(u) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (delim) {
      word_start = true;
      continue;
    }
    c = static_cast<char>(word_start ? std::toupper(u) : std::tolower(u));
    word_start = false;
  }
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<std::string> py_splitlines(const std::string& s) {
  std::vector<std::string> lines;
  std::string cur;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      lines.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) lines.push_back(cur);
  return lines;
}

}  // namespace kr::jinja
