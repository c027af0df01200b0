#include "grammar/number_ranges.h"

#include <algorithm>
#include <vector>

namespace kr::grammar {

namespace {

constexpr uint32_t kSignificantDigits = 15;

std::string strip_leading_zeros(std::string s) {
  size_t i = 0;
  while (i + 1 < s.size() && s[i] == '0') ++i;
  return s.substr(i);
}

std::string strip_trailing_zeros(std::string s) {
  while (!s.empty() && s.back() == '0') s.pop_back();
  return s;
}

// Unsigned digit strings without leading zeros.
int compare_uint(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  return a < b ? -1 : (a > b ? 1 : 0);
}

std::string add_one(std::string s) {
  int i = static_cast<int>(s.size()) - 1;
  while (i >= 0 && s[i] == '9') s[i--] = '0';
  if (i < 0) {
    s.insert(s.begin(), '1');
    return s;
  }
  s[i]++;
  return s;
}

std::string sub_one(std::string s) {  // s > 0
  int i = static_cast<int>(s.size()) - 1;
  while (i >= 0 && s[i] == '0') s[i--] = '9';
  s[i]--;
  return strip_leading_zeros(s);
}

ExprId digit_range(Grammar& g, char lo, char hi) {
  return g.bytes(ByteSet::range(static_cast<uint8_t>(lo), static_cast<uint8_t>(hi)));
}

ExprId digits(Grammar& g, uint32_t min, uint32_t max) { return g.repeat(digit_range(g, '0', '9'), min, max); }

bool all_of(const std::string& s, size_t from, char c) {
  for (size_t i = from; i < s.size(); ++i) {
    if (s[i] != c) return false;
  }
  return true;
}

// Digit strings of a's length with a <= value <= b (same length, a <= b).
ExprId same_length(Grammar& g, const std::string& a, const std::string& b) {
  const size_t n = a.size();
  if (n == 1) return digit_range(g, a[0], b[0]);
  if (a[0] == b[0]) return g.seq({g.byte(static_cast<uint8_t>(a[0])), same_length(g, a.substr(1), b.substr(1))});
  const uint32_t rest = static_cast<uint32_t>(n - 1);
  const bool lo_full = all_of(a, 1, '0'), hi_full = all_of(b, 1, '9');
  std::vector<ExprId> alts;
  char mid_lo = lo_full ? a[0] : static_cast<char>(a[0] + 1);
  char mid_hi = hi_full ? b[0] : static_cast<char>(b[0] - 1);
  if (!lo_full) alts.push_back(g.seq({g.byte(static_cast<uint8_t>(a[0])), same_length(g, a.substr(1), std::string(rest, '9'))}));
  if (mid_lo <= mid_hi) alts.push_back(g.seq({digit_range(g, mid_lo, mid_hi), digits(g, rest, rest)}));
  if (!hi_full) alts.push_back(g.seq({g.byte(static_cast<uint8_t>(b[0])), same_length(g, std::string(rest, '0'), b.substr(1))}));
  return g.alt(alts);
}

// Unsigned integers (no leading zeros) in [lo, hi]; hi empty = unbounded up
// to max_digits digits.
ExprId uint_range(Grammar& g, const std::string& lo, const std::string& hi, uint32_t max_digits) {
  if (!hi.empty() && compare_uint(lo, hi) > 0) return g.nothing();
  const size_t lmax = hi.empty() ? std::max<size_t>(max_digits, lo.size()) : hi.size();
  std::vector<ExprId> alts;
  for (size_t len = lo.size(); len <= lmax; ++len) {
    std::string a = lo;
    if (len != lo.size()) {
      a.assign(len, '0');
      a[0] = '1';
    }
    std::string b = (!hi.empty() && len == hi.size()) ? hi : std::string(len, '9');
    if (a > b) continue;
    if (len > 1 && a[0] == '1' && all_of(a, 1, '0') && all_of(b, 0, '9')) {
      alts.push_back(g.seq({digit_range(g, '1', '9'), digits(g, static_cast<uint32_t>(len - 1),
                                                              static_cast<uint32_t>(len - 1))}));
    } else {
      alts.push_back(same_length(g, a, b));
    }
  }
  return g.alt(alts);
}

// ---- fraction digit strings F (non-empty), read as the decimal 0.F ----
ExprId frac_cmp(Grammar& g, const std::string& f, bool greater, bool inclusive, uint32_t cap) {
  // f: no trailing zeros, non-empty.
  std::vector<ExprId> alts;
  ExprId any = digits(g, 0, kUnbounded);
  for (size_t k = 0; k < f.size(); ++k) {
    char fk = f[k];
    if (greater ? fk < '9' : fk > '0') {
      ExprId d = greater ? digit_range(g, static_cast<char>(fk + 1), '9') : digit_range(g, '0', static_cast<char>(fk - 1));
      alts.push_back(g.seq({g.literal(f.substr(0, k)), d, any}));
    }
  }
  ExprId zeros = g.star(g.byte('0'));
  if (greater) {
    // F extends f: f itself (when inclusive) or f followed by a nonzero digit somewhere.
    if (inclusive) alts.push_back(g.seq({g.literal(f), zeros}));
    alts.push_back(g.seq({g.literal(f), zeros, digit_range(g, '1', '9'), any}));
  } else {
    // F is a prefix of f (then 0.F < 0.f), or f itself when inclusive, each padded with zeros.
    for (size_t k = 1; k < f.size(); ++k) alts.push_back(g.seq({g.literal(f.substr(0, k)), zeros}));
    if (inclusive) alts.push_back(g.seq({g.literal(f), zeros}));
  }
  return g.intersect(g.alt(alts), digits(g, 1, cap));
}

// Optional fraction ("." F or nothing) with 0.F compared to 0.f.
ExprId frac_at_least(Grammar& g, const std::string& f, bool inclusive, uint32_t cap) {
  ExprId dot = g.byte('.');
  if (f.empty()) {
    if (inclusive) return g.optional(g.seq({dot, digits(g, 1, cap)}));
    // F > 0: some nonzero digit.
    ExprId positive = g.intersect(g.seq({g.star(g.byte('0')), digit_range(g, '1', '9'), digits(g, 0, kUnbounded)}),
                                  digits(g, 1, cap));
    return g.seq({dot, positive});
  }
  return g.seq({dot, frac_cmp(g, f, true, inclusive, cap)});
}

ExprId frac_at_most(Grammar& g, const std::string& f, bool inclusive, uint32_t cap) {
  ExprId dot = g.byte('.');
  if (f.empty()) {
    if (!inclusive) return g.nothing();
    return g.optional(g.seq({dot, g.repeat(g.byte('0'), 1, cap)}));
  }
  return g.alt({g.empty(), g.seq({dot, frac_cmp(g, f, false, inclusive, cap)})});
}

// Non-negative numbers (no sign) in [lo, hi]; hi absent = unbounded.
ExprId nonneg_range(Grammar& g, const Bound& lo, const std::optional<Bound>& hi) {
  const std::string& li = lo.value.int_digits;
  const std::string& lf = lo.value.frac_digits;
  size_t width = li.size();
  if (hi) width = std::max(width, hi->value.int_digits.size());
  const uint32_t cap = static_cast<uint32_t>(std::max<size_t>(1, kSignificantDigits > width ? kSignificantDigits - width : 1));
  if (hi) {
    int c = compare(lo.value, hi->value);
    if (c > 0 || (c == 0 && !(lo.inclusive && hi->inclusive))) return g.nothing();
  }
  std::vector<ExprId> alts;
  if (hi && hi->value.int_digits == li) {
    ExprId f = g.intersect(frac_at_least(g, lf, lo.inclusive, cap), frac_at_most(g, hi->value.frac_digits, hi->inclusive, cap));
    return g.seq({g.literal(li), f});
  }
  alts.push_back(g.seq({g.literal(li), frac_at_least(g, lf, lo.inclusive, cap)}));
  ExprId any_frac = g.optional(g.seq({g.byte('.'), digits(g, 1, cap)}));
  std::string mid_lo = add_one(li);
  if (hi) {
    const std::string& hi_int = hi->value.int_digits;
    if (hi_int != "0" && compare_uint(mid_lo, hi_int) < 0) {
      alts.push_back(g.seq({uint_range(g, mid_lo, sub_one(hi_int), 0), any_frac}));
    }
    alts.push_back(g.seq({g.literal(hi_int), frac_at_most(g, hi->value.frac_digits, hi->inclusive, cap)}));
  } else {
    alts.push_back(g.seq({uint_range(g, mid_lo, "", kSignificantDigits), any_frac}));
  }
  return g.alt(alts);
}

Decimal negate(Decimal d) {
  if (!d.is_zero()) d.negative = !d.negative;
  return d;
}

// Integer bounds: smallest integer >= (or >) lo, largest <= (or <) hi.
struct SignedInt {
  bool negative = false;
  std::string digits = "0";
};

SignedInt int_lower(const Bound& b) {
  // ceil(v) if inclusive, floor(v) + 1 if exclusive.
  const Decimal& v = b.value;
  SignedInt r{v.negative, v.int_digits};
  bool has_frac = !v.frac_digits.empty();
  // ceil: positive with fraction -> +1 ; negative with fraction -> truncation is the ceil.
  if (!b.inclusive && !has_frac) {
    // v + 1
    if (!v.negative) {
      r.digits = add_one(r.digits);
    } else {
      r.digits = sub_one(r.digits);
      if (r.digits == "0") r.negative = false;
    }
  } else if (has_frac && !v.negative) {
    r.digits = add_one(r.digits);
  }
  if (r.digits == "0") r.negative = false;
  return r;
}

SignedInt int_upper(const Bound& b) {
  const Decimal& v = b.value;
  SignedInt r{v.negative, v.int_digits};
  bool has_frac = !v.frac_digits.empty();
  if (!b.inclusive && !has_frac) {
    // v - 1
    if (v.negative) {
      r.digits = add_one(r.digits);
    } else if (r.digits == "0") {
      r.negative = true;
      r.digits = "1";
    } else {
      r.digits = sub_one(r.digits);
    }
  } else if (has_frac && v.negative) {
    r.digits = add_one(r.digits);
  }
  if (r.digits == "0") r.negative = false;
  return r;
}

}  // namespace

StatusOr<Decimal> Decimal::parse(std::string_view text) {
  size_t i = 0;
  Decimal d;
  auto bad = [&]() { return InvalidArgument("not a JSON number: '" + std::string(text) + "'"); };
  if (i < text.size() && text[i] == '-') {
    d.negative = true;
    ++i;
  }
  std::string digits;
  size_t start = i;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') digits.push_back(text[i++]);
  if (i == start) return bad();
  int64_t point = static_cast<int64_t>(digits.size());  // decimal point position in `digits`
  if (i < text.size() && text[i] == '.') {
    ++i;
    size_t fs = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') digits.push_back(text[i++]);
    if (i == fs) return bad();
  }
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool eneg = false;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) eneg = text[i++] == '-';
    int64_t e = 0;
    size_t es = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      e = e * 10 + (text[i++] - '0');
      if (e > 1000) return InvalidArgument("number bound is out of range: '" + std::string(text) + "'");
    }
    if (i == es) return bad();
    point += eneg ? -e : e;
  }
  if (i != text.size()) return bad();
  if (point < 0) {
    digits.insert(0, static_cast<size_t>(-point), '0');
    point = 0;
  }
  if (point > static_cast<int64_t>(digits.size())) digits.append(static_cast<size_t>(point) - digits.size(), '0');
  d.int_digits = strip_leading_zeros(point == 0 ? "0" : digits.substr(0, static_cast<size_t>(point)));
  d.frac_digits = strip_trailing_zeros(digits.substr(static_cast<size_t>(point)));
  if (d.is_zero()) d.negative = false;
  return d;
}

std::string Decimal::to_string() const {
  std::string s = negative ? "-" : "";
  s += int_digits;
  if (!frac_digits.empty()) {
    s += '.';
    s += frac_digits;
  }
  return s;
}

int compare(const Decimal& a, const Decimal& b) {
  if (a.negative != b.negative) return a.negative ? -1 : 1;
  int mag = compare_uint(a.int_digits, b.int_digits);
  if (mag == 0) {
    size_t n = std::max(a.frac_digits.size(), b.frac_digits.size());
    std::string fa = a.frac_digits, fb = b.frac_digits;
    fa.resize(n, '0');
    fb.resize(n, '0');
    mag = fa < fb ? -1 : (fa > fb ? 1 : 0);
  }
  return a.negative ? -mag : mag;
}

ExprId integer_range_expr(Grammar& g, const std::optional<Bound>& lo, const std::optional<Bound>& hi,
                          uint32_t max_digits) {
  std::optional<SignedInt> l, h;
  if (lo) l = int_lower(*lo);
  if (hi) h = int_upper(*hi);
  auto value_cmp = [](const SignedInt& a, const SignedInt& b) {
    if (a.negative != b.negative) return a.negative ? -1 : 1;
    int m = compare_uint(a.digits, b.digits);
    return a.negative ? -m : m;
  };
  if (l && h && value_cmp(*l, *h) > 0) return g.nothing();
  std::vector<ExprId> alts;
  // Non-negative part: [max(l, 0), h].
  if (!h || !h->negative) {
    std::string from = (l && !l->negative) ? l->digits : "0";
    std::string to = h ? h->digits : "";
    alts.push_back(uint_range(g, from, to, max_digits));
  }
  // Negative part: magnitudes [max(1, -h), -l].
  if (!l || l->negative) {
    std::string from = (h && h->negative) ? h->digits : "1";
    std::string to = l ? l->digits : "";
    alts.push_back(g.seq({g.byte('-'), uint_range(g, from, to, max_digits)}));
  }
  return g.alt(alts);
}

ExprId number_range_expr(Grammar& g, const std::optional<Bound>& lo, const std::optional<Bound>& hi) {
  std::vector<ExprId> alts;
  const Bound zero_incl{Decimal{}, true};
  // x >= 0.
  if (!hi || !hi->value.negative) {
    Bound l = (lo && !lo->value.negative) ? *lo : zero_incl;
    alts.push_back(nonneg_range(g, l, hi));
  }
  // x < 0: "-" y with y > 0, y in [-hi, -lo].
  if (!lo || lo->value.negative) {
    Bound ylo = (hi && hi->value.negative) ? Bound{negate(hi->value), hi->inclusive} : Bound{Decimal{}, false};
    std::optional<Bound> yhi;
    if (lo) yhi = Bound{negate(lo->value), lo->inclusive};
    alts.push_back(g.seq({g.byte('-'), nonneg_range(g, ylo, yhi)}));
  }
  return g.alt(alts);
}

}  // namespace kr::grammar
