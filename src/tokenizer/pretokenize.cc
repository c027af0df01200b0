// Hand-written matchers for the GPT-2 and GPT-4-style split regexes, with the
// leftmost-first alternation and backtracking semantics of Oniguruma (which
// Hugging Face tokenizers uses), and the PreTokenizer pipeline.
#include "tokenizer/pretokenize.h"
#include "tokenizer/scratch.h"

#include <nlohmann/json.hpp>

#include "tokenizer/unicode.h"

namespace kr {
namespace {

constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kGpt2Regex = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

constexpr uint8_t kL = 1, kN = 2, kWs = 8;

// One decoded character of the text being split.
struct Ch {
  uint32_t cp;
  uint32_t offset;  // byte offset in the text
  uint8_t flags;
};

bool is_newline(uint32_t cp) { return cp == '\r' || cp == '\n'; }

// Simple case folding for the contraction letters; U+017F (long s) folds to 's'.
uint32_t fold(uint32_t cp) {
  if (cp >= 'A' && cp <= 'Z') return cp + 32;
  if (cp == 0x17F) return 's';
  return cp;
}

// Length in characters of the contraction at i ('s 't 're 've 'm 'll 'd), or 0.
size_t match_contraction(const std::vector<Ch>& ch, size_t i, bool ignore_case) {
  const size_t n = ch.size();
  if (ch[i].cp != '\'' || i + 1 >= n) return 0;
  const auto c = [&](size_t k) { return ignore_case ? fold(ch[k].cp) : ch[k].cp; };
  const uint32_t c1 = c(i + 1);
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  if (i + 2 < n) {
    const uint32_t c2 = c(i + 2);
    if ((c1 == 'r' || c1 == 'v') && c2 == 'e') return 3;
    if (c1 == 'l' && c2 == 'l') return 3;
  }
  return 0;
}

size_t run_of(const std::vector<Ch>& ch, size_t i, uint8_t flag) {
  while (i < ch.size() && (ch[i].flags & flag)) ++i;
  return i;
}

bool is_punct(const Ch& c) { return (c.flags & (kL | kN | kWs)) == 0; }

// \s*[\r\n]+ | \s+(?!\S) | \s+ at a whitespace character i (gpt4: with the
// first alternative). Returns the end index.
size_t match_whitespace(const std::vector<Ch>& ch, size_t i, bool newline_alt) {
  const size_t j = run_of(ch, i, kWs);
  if (newline_alt) {
    for (size_t k = j; k > i; --k) {
      if (is_newline(ch[k - 1].cp)) return k;
    }
  }
  if (j == ch.size()) return j;  // \s+(?!\S) at the end of the text
  if (j - 1 > i) return j - 1;   // leave the last space to prefix the next word
  return j;                      // \s+
}

size_t match_gpt4(const std::vector<Ch>& ch, size_t i, size_t max_digits) {
  const size_t n = ch.size();
  if (size_t k = match_contraction(ch, i, /*ignore_case=*/true)) return i + k;
  const Ch& c = ch[i];
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (c.flags & kL) return run_of(ch, i, kL);
  if (!(c.flags & (kL | kN)) && !is_newline(c.cp) && i + 1 < n && (ch[i + 1].flags & kL)) {
    return run_of(ch, i + 1, kL);
  }
  // \p{N}{1,max}
  if (c.flags & kN) {
    size_t j = i;
    while (j < n && j - i < max_digits && (ch[j].flags & kN)) ++j;
    return j;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  size_t j = i;
  if (c.cp == ' ' && i + 1 < n && is_punct(ch[i + 1])) j = i + 1;
  if (is_punct(ch[j])) {
    while (j < n && is_punct(ch[j])) ++j;
    while (j < n && is_newline(ch[j].cp)) ++j;
    return j;
  }
  if (c.flags & kWs) return match_whitespace(ch, i, /*newline_alt=*/true);
  return i + 1;  // unreachable: every character is L, N, whitespace or other
}

size_t match_gpt2(const std::vector<Ch>& ch, size_t i) {
  const size_t n = ch.size();
  if (size_t k = match_contraction(ch, i, /*ignore_case=*/false)) return i + k;
  const Ch& c = ch[i];
  const size_t start = (c.cp == ' ' && i + 1 < n) ? i + 1 : i;
  const Ch& d = ch[start];
  if (d.flags & kL) return run_of(ch, start, kL);
  if (d.flags & kN) return run_of(ch, start, kN);
  if (is_punct(d)) {
    size_t j = start;
    while (j < n && is_punct(ch[j])) ++j;
    return j;
  }
  if (c.flags & kWs) return match_whitespace(ch, i, /*newline_alt=*/false);
  return i + 1;
}

}  // namespace

StatusOr<SplitPattern> parse_split_pattern(std::string_view regex) {
  if (regex == kLlama3Regex) return SplitPattern::kLlama3;
  if (regex == kQwen2Regex) return SplitPattern::kQwen2;
  if (regex == kGpt2Regex) return SplitPattern::kGpt2;
  return Unimplemented("pre-tokenizer regex not supported (only the GPT-2, Llama 3 and Qwen2 patterns are): " +
                       std::string(regex));
}

void find_matches(SplitPattern pattern, std::string_view text, std::vector<PieceSpan>* matches) {
  thread_local std::vector<Ch> ch;
  ch.clear();
  struct Release {
    ~Release() { release_if_large(ch); }
  } release_after_use;
  for (size_t i = 0; i < text.size();) {
    size_t len = 0;
    const uint32_t cp = unicode::decode_utf8(text, i, &len);
    // An invalid byte decodes to U+FFFD, which is a symbol (So): treated as "other".
    ch.push_back(Ch{cp, static_cast<uint32_t>(i), unicode::class_flags(cp)});
    i += len;
  }
  const auto offset = [&](size_t k) { return k < ch.size() ? ch[k].offset : static_cast<uint32_t>(text.size()); };
  for (size_t i = 0; i < ch.size();) {
    size_t j;
    switch (pattern) {
      case SplitPattern::kLlama3: j = match_gpt4(ch, i, 3); break;
      case SplitPattern::kQwen2: j = match_gpt4(ch, i, 1); break;
      default: j = match_gpt2(ch, i); break;
    }
    matches->push_back(PieceSpan{offset(i), offset(j)});
    i = j;
  }
}

StatusOr<PreTokenizer> PreTokenizer::from_json(std::string_view pre_tokenizer_json) {
  try {
    const nlohmann::json j = nlohmann::json::parse(pre_tokenizer_json);
    if (j.is_null()) return PreTokenizer();
    std::vector<nlohmann::json> list;
    const std::string type = j.at("type").get<std::string>();
    if (type == "Sequence") {
      for (const auto& p : j.at("pretokenizers")) list.push_back(p);
    } else {
      list.push_back(j);
    }
    std::vector<SplitStep> steps;
    bool byte_level = false, prefix = false;
    for (const auto& p : list) {
      const std::string t = p.at("type").get<std::string>();
      if (t == "Split") {
        if (byte_level) return Unimplemented("pre_tokenizer: Split after ByteLevel is not supported");
        const auto& pat = p.at("pattern");
        if (!pat.contains("Regex")) return Unimplemented("pre_tokenizer: Split with a String pattern is not supported");
        KR_ASSIGN_OR_RETURN(SplitPattern sp, parse_split_pattern(pat.at("Regex").get<std::string>()));
        SplitStep step{sp};
        const std::string behavior = p.at("behavior").get<std::string>();
        if (behavior == "Isolated") {
          step.behavior = SplitBehavior::kIsolated;
        } else if (behavior == "Removed") {
          step.behavior = SplitBehavior::kRemoved;
        } else {
          return Unimplemented("pre_tokenizer: Split behavior " + behavior + " is not supported");
        }
        step.invert = p.value("invert", false);
        steps.push_back(step);
      } else if (t == "ByteLevel") {
        byte_level = true;
        prefix = p.value("add_prefix_space", false);
        if (p.value("use_regex", true)) steps.push_back(SplitStep{SplitPattern::kGpt2});
      } else {
        return Unimplemented("pre_tokenizer type " + t + " is not supported");
      }
    }
    return PreTokenizer(std::move(steps), byte_level, prefix);
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("tokenizer.json pre_tokenizer: ") + e.what());
  }
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>* pieces, std::vector<PieceSpan>* scratch,
                         std::deque<std::string>* storage) const {
  const size_t first_piece = pieces->size();
  pieces->push_back(text);
  for (const SplitStep& step : steps_) {
    std::vector<std::string_view> current(pieces->begin() + static_cast<ptrdiff_t>(first_piece), pieces->end());
    pieces->resize(first_piece);
    for (std::string_view piece : current) {
      scratch->clear();
      find_matches(step.pattern, piece, scratch);
      // The matches cover the piece, so the gaps are empty: Isolated keeps
      // every match as a piece; Removed drops the matches, unless inverted
      // (then the matches are what is kept and the empty gaps are removed).
      const bool keep_matches = step.behavior == SplitBehavior::kIsolated || step.invert;
      if (keep_matches) {
        for (const PieceSpan& s : *scratch) pieces->push_back(piece.substr(s.begin, s.end - s.begin));
      }
    }
  }
  if (add_prefix_space_) {
    for (size_t i = first_piece; i < pieces->size(); ++i) {
      std::string_view p = (*pieces)[i];
      if (!p.empty() && p.front() == ' ') continue;
      std::string& prefixed = storage->emplace_back();
      prefixed.reserve(p.size() + 1);
      prefixed.push_back(' ');
      prefixed.append(p);
      (*pieces)[i] = prefixed;
    }
  }
}

}  // namespace kr
