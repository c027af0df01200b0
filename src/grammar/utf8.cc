#include "grammar/utf8.h"

#include <algorithm>

namespace kr::grammar {

std::vector<CodepointRange> normalize_ranges(std::vector<CodepointRange> ranges) {
  std::vector<CodepointRange> clipped;
  for (CodepointRange r : ranges) {
    if (r.lo > r.hi || r.lo > kMaxCodepoint) continue;
    r.hi = std::min(r.hi, kMaxCodepoint);
    // Remove the surrogate block D800-DFFF.
    if (r.lo < 0xD800 && r.hi >= 0xD800) {
      clipped.push_back({r.lo, 0xD7FF});
      if (r.hi > 0xDFFF) clipped.push_back({0xE000, r.hi});
    } else if (r.lo >= 0xD800 && r.lo <= 0xDFFF) {
      if (r.hi > 0xDFFF) clipped.push_back({0xE000, r.hi});
    } else {
      clipped.push_back(r);
    }
  }
  std::sort(clipped.begin(), clipped.end(),
            [](const CodepointRange& a, const CodepointRange& b) { return a.lo < b.lo; });
  std::vector<CodepointRange> out;
  for (const CodepointRange& r : clipped) {
    if (!out.empty() && r.lo <= out.back().hi + 1) {
      out.back().hi = std::max(out.back().hi, r.hi);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

std::vector<CodepointRange> complement_ranges(const std::vector<CodepointRange>& ranges) {
  std::vector<CodepointRange> out;
  uint32_t next = 0;
  for (const CodepointRange& r : ranges) {
    if (r.lo > next) out.push_back({next, r.lo - 1});
    next = r.hi + 1;
  }
  if (next <= kMaxCodepoint) out.push_back({next, kMaxCodepoint});
  return normalize_ranges(std::move(out));
}

namespace {

int utf8_length(uint32_t cp) {
  if (cp < 0x80) return 1;
  if (cp < 0x800) return 2;
  if (cp < 0x10000) return 3;
  return 4;
}

void encode(uint32_t cp, uint8_t* out) {
  switch (utf8_length(cp)) {
    case 1: out[0] = static_cast<uint8_t>(cp); break;
    case 2:
      out[0] = static_cast<uint8_t>(0xC0 | (cp >> 6));
      out[1] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
      break;
    case 3:
      out[0] = static_cast<uint8_t>(0xE0 | (cp >> 12));
      out[1] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
      out[2] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
      break;
    default:
      out[0] = static_cast<uint8_t>(0xF0 | (cp >> 18));
      out[1] = static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3F));
      out[2] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
      out[3] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
      break;
  }
}

// Splits [lo, hi] (same encoded length) into pieces whose encodings are a
// product of byte ranges, and emits one byte-range sequence per piece.
void split_same_length(Grammar& g, uint32_t lo, uint32_t hi, std::vector<ExprId>& alts) {
  int n = utf8_length(lo);
  for (int i = 1; i < n; ++i) {
    uint32_t m = (uint32_t{1} << (6 * i)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        split_same_length(g, lo, lo | m, alts);
        split_same_length(g, (lo | m) + 1, hi, alts);
        return;
      }
      if ((hi & m) != m) {
        split_same_length(g, lo, (hi & ~m) - 1, alts);
        split_same_length(g, hi & ~m, hi, alts);
        return;
      }
    }
  }
  uint8_t a[4], b[4];
  encode(lo, a);
  encode(hi, b);
  std::vector<ExprId> items;
  for (int i = 0; i < n; ++i) items.push_back(g.bytes(ByteSet::range(a[i], b[i])));
  alts.push_back(g.seq(items));
}

}  // namespace

ExprId codepoint_class_expr(Grammar& g, const std::vector<CodepointRange>& ranges) {
  static constexpr uint32_t kBounds[] = {0x7F, 0x7FF, 0xFFFF, kMaxCodepoint};
  std::vector<ExprId> alts;
  ByteSet ascii;
  for (CodepointRange r : ranges) {
    uint32_t lo = r.lo;
    for (uint32_t bound : kBounds) {
      if (lo > r.hi) break;
      if (lo > bound) continue;
      uint32_t hi = std::min(r.hi, bound);
      if (hi < 0x80) {
        ascii.set_range(lo, hi);
      } else {
        split_same_length(g, lo, hi, alts);
      }
      lo = hi + 1;
    }
  }
  if (!ascii.empty()) alts.insert(alts.begin(), g.bytes(ascii));
  return g.alt(alts);
}

void append_utf8(std::string& out, uint32_t cp) {
  uint8_t buf[4];
  encode(cp, buf);
  out.append(reinterpret_cast<const char*>(buf), utf8_length(cp));
}

bool decode_utf8(std::string_view s, size_t& pos, uint32_t& cp) {
  if (pos >= s.size()) return false;
  uint8_t c = static_cast<uint8_t>(s[pos]);
  int n;
  uint32_t min;
  if (c < 0x80) {
    cp = c;
    ++pos;
    return true;
  } else if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
    min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
    min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
    min = 0x10000;
  } else {
    return false;
  }
  if (pos + n > s.size()) return false;
  for (int i = 1; i < n; ++i) {
    uint8_t cc = static_cast<uint8_t>(s[pos + i]);
    if ((cc & 0xC0) != 0x80) return false;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if (cp < min || cp > kMaxCodepoint || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
  pos += n;
  return true;
}

bool is_valid_utf8(std::string_view s) {
  size_t pos = 0;
  uint32_t cp;
  while (pos < s.size()) {
    if (!decode_utf8(s, pos, cp)) return false;
  }
  return true;
}

}  // namespace kr::grammar
