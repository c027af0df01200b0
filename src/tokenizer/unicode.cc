// UTF-8 handling, class lookups and NFC over the generated tables.
#include "tokenizer/unicode.h"

#include <algorithm>
#include <vector>

#include "tokenizer/unicode_tables.h"

namespace kr::unicode {
namespace ut = unicode_tables;
namespace {

constexpr uint32_t kReplacement = 0xFFFD;

// Hangul syllable algorithm constants (Unicode §3.12).
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

// Length of the valid UTF-8 sequence at s[pos], or 0 if none. *partial is set
// to the count of bytes that form a valid but truncated prefix when the text
// ends mid-sequence (then 0 is returned).
size_t valid_seq_len(std::string_view s, size_t pos, size_t* maximal_invalid, bool* truncated) {
  const auto b = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t c0 = b(pos);
  *truncated = false;
  *maximal_invalid = 1;
  if (c0 < 0x80) return 1;
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;
  if (c0 >= 0xC2 && c0 <= 0xDF) {
    need = 1;
  } else if (c0 >= 0xE0 && c0 <= 0xEF) {
    need = 2;
    if (c0 == 0xE0) lo = 0xA0;
    if (c0 == 0xED) hi = 0x9F;
  } else if (c0 >= 0xF0 && c0 <= 0xF4) {
    need = 3;
    if (c0 == 0xF0) lo = 0x90;
    if (c0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  size_t i = 1;
  for (; i <= need; ++i) {
    if (pos + i >= s.size()) {
      *truncated = true;
      *maximal_invalid = i;
      return 0;
    }
    const uint8_t c = b(pos + i);
    const uint8_t l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
    if (c < l || c > h) {
      *maximal_invalid = i;
      return 0;
    }
  }
  return need + 1;
}

size_t find_run(uint32_t cp) {
  // Last run whose first <= cp.
  const ut::ClassRun* end = ut::kClassRuns + ut::kClassRunsSize;
  const ut::ClassRun* it =
      std::upper_bound(ut::kClassRuns, end, cp, [](uint32_t v, const ut::ClassRun& r) { return v < r.first; });
  return static_cast<size_t>(it - ut::kClassRuns) - 1;
}

// Flags of ASCII, looked up on every character of typical text.
struct AsciiFlags {
  uint8_t f[128];
  AsciiFlags() {
    for (uint32_t c = 0; c < 128; ++c) f[c] = ut::kClassRuns[find_run(c)].flags;
  }
};

const ut::Decomposition* find_decomposition(uint32_t cp) {
  const ut::Decomposition* end = ut::kDecompositions + ut::kDecompositionsSize;
  const ut::Decomposition* it = std::lower_bound(
      ut::kDecompositions, end, cp, [](const ut::Decomposition& d, uint32_t v) { return d.cp < v; });
  return it != end && it->cp == cp ? it : nullptr;
}

void decompose(uint32_t cp, std::vector<uint32_t>* out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out->push_back(kLBase + s / kNCount);
    out->push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out->push_back(kTBase + s % kTCount);
    return;
  }
  if (const ut::Decomposition* d = find_decomposition(cp)) {
    out->insert(out->end(), ut::kDecompositionPool + d->offset, ut::kDecompositionPool + d->offset + d->length);
    return;
  }
  out->push_back(cp);
}

// The primary composite of (a, b), or 0.
uint32_t compose(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  const uint64_t key = (static_cast<uint64_t>(a) << 21) | b;
  const ut::Composition* end = ut::kCompositions + ut::kCompositionsSize;
  const ut::Composition* it = std::lower_bound(
      ut::kCompositions, end, key, [](const ut::Composition& c, uint64_t v) { return c.pair < v; });
  return it != end && it->pair == key ? it->composite : 0;
}

}  // namespace

uint32_t decode_utf8(std::string_view s, size_t pos, size_t* len_bytes) {
  const uint8_t c0 = static_cast<uint8_t>(s[pos]);
  if (c0 < 0x80) {
    *len_bytes = 1;
    return c0;
  }
  size_t maximal = 1;
  bool truncated = false;
  const size_t n = valid_seq_len(s, pos, &maximal, &truncated);
  if (n == 0) {
    *len_bytes = 1;
    return kReplacement;
  }
  *len_bytes = n;
  uint32_t cp = c0 & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
  for (size_t i = 1; i < n; ++i) cp = (cp << 6) | (static_cast<uint8_t>(s[pos + i]) & 0x3F);
  return cp;
}

void append_utf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

uint8_t class_flags(uint32_t cp) {
  static const AsciiFlags ascii;
  if (cp < 128) return ascii.f[cp];
  if (cp >= 0x110000) return 0;
  return ut::kClassRuns[find_run(cp)].flags;
}

char letter_subcategory(uint32_t cp) {
  static const char kNames[] = {0, 'u', 'l', 't', 'm', 'o', 0, 0};
  return kNames[(class_flags(cp) >> ut::kLetterSubShift) & 7];
}

uint8_t combining_class(uint32_t cp) {
  if (cp < 0x300) return 0;
  const ut::CccRun* end = ut::kCccRuns + ut::kCccRunsSize;
  const ut::CccRun* it =
      std::upper_bound(ut::kCccRuns, end, cp, [](uint32_t v, const ut::CccRun& r) { return v < r.first; });
  if (it == ut::kCccRuns) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

std::string nfc(std::string_view text) {
  // Fast path: code points below U+0300 are never changed by NFC and never
  // combine with a neighbour below U+0300.
  bool simple = true;
  for (size_t i = 0; i < text.size() && simple; ++i) {
    const uint8_t c = static_cast<uint8_t>(text[i]);
    if (c >= 0xCC) simple = false;  // lead bytes of U+0300 and above
  }
  if (simple && is_valid_utf8(text)) return std::string(text);

  // 1. Full canonical decomposition.
  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t n = 0;
    decompose(decode_utf8(text, i, &n), &cps);
    i += n;
  }
  // 2. Canonical ordering: stable sort of each run of non-starters by ccc.
  for (size_t i = 0; i < cps.size();) {
    if (combining_class(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && combining_class(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + static_cast<ptrdiff_t>(i), cps.begin() + static_cast<ptrdiff_t>(j),
                     [](uint32_t a, uint32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  // 3. Canonical composition.
  std::vector<uint32_t> out;
  out.reserve(cps.size());
  size_t starter = SIZE_MAX;  // index in `out` of the last starter
  int last_ccc = -1;          // ccc of the last character appended after the starter
  for (uint32_t cp : cps) {
    const uint8_t ccc = combining_class(cp);
    if (starter != SIZE_MAX) {
      // Not blocked: nothing in between, or the previous char has a lower ccc (and ccc != 0).
      const bool blocked = last_ccc != -1 && (last_ccc == 0 || last_ccc >= ccc);
      if (!blocked) {
        if (uint32_t c = compose(out[starter], cp)) {
          out[starter] = c;
          continue;
        }
      }
    }
    if (ccc == 0) {
      starter = out.size();
      last_ccc = -1;
    } else {
      last_ccc = ccc;
    }
    out.push_back(cp);
  }
  std::string result;
  result.reserve(text.size());
  for (uint32_t cp : out) append_utf8(cp, &result);
  return result;
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t maximal = 1;
    bool truncated = false;
    const size_t n = valid_seq_len(s, i, &maximal, &truncated);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

size_t complete_utf8_prefix(std::string_view s) {
  // Only the last 3 bytes can start a truncated sequence.
  const size_t from = s.size() > 3 ? s.size() - 3 : 0;
  for (size_t i = from; i < s.size(); ++i) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    if (c < 0xC2 || c > 0xF4) continue;  // not a lead byte
    size_t maximal = 1;
    bool truncated = false;
    if (valid_seq_len(s, i, &maximal, &truncated) == 0 && truncated) return i;
  }
  return s.size();
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t maximal = 1;
    bool truncated = false;
    const size_t n = valid_seq_len(s, i, &maximal, &truncated);
    if (n > 0) {
      out.append(s.data() + i, n);
      i += n;
    } else {
      append_utf8(kReplacement, &out);
      i += maximal;
    }
  }
  return out;
}

}  // namespace kr::unicode
