// Hand-written matchers for the GPT-2 and GPT-4-style split regexes, with the
// leftmost-first alternation and backtracking semantics of Oniguruma (which
// Hugging Face tokenizers uses), and the PreTokenizer pipeline.
#include "tokenizer/pretokenize.h"
#include "tokenizer/scratch.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "tokenizer/unicode.h"

namespace kr {
namespace {

constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kTekkenRegex =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
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

// Tekken's letter classes: A = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}], B = [\p{Ll}\p{Lm}\p{Lo}\p{M}].
constexpr uint8_t kM = 4;
uint8_t letter_sub(const Ch& c) { return static_cast<uint8_t>((c.flags >> 4) & 7); }  // 1 Lu 2 Ll 3 Lt 4 Lm 5 Lo
bool tekken_a(const Ch& c) {
  const uint8_t s = letter_sub(c);
  return s == 1 || s == 3 || s == 4 || s == 5 || (c.flags & kM);
}
bool tekken_b(const Ch& c) {
  const uint8_t s = letter_sub(c);
  return s == 2 || s == 4 || s == 5 || (c.flags & kM);
}
// [^\r\n\p{L}\p{N}] (marks and whitespace other than \r \n included).
bool tekken_prefix(const Ch& c) { return !(c.flags & (kL | kN)) && !is_newline(c.cp); }

template <typename Pred>
size_t run_while(const std::vector<Ch>& ch, size_t i, Pred p) {
  while (i < ch.size() && p(ch[i])) ++i;
  return i;
}

size_t match_tekken(const std::vector<Ch>& ch, size_t i) {
  const size_t n = ch.size();
  // P?A*B+ : P? greedy; A* greedy, giving characters back until B+ can match.
  for (bool take_p : {true, false}) {
    if (take_p && !tekken_prefix(ch[i])) continue;
    const size_t j = take_p ? i + 1 : i;
    const size_t k = run_while(ch, j, tekken_a);
    if (k < n && tekken_b(ch[k])) return run_while(ch, k, tekken_b);
    // Backtrack A*: the last B among the A run ends the match (the character
    // after it is neither B nor, at k, able to continue B+).
    for (size_t m = k; m > j; --m) {
      if (tekken_b(ch[m - 1])) return m;
    }
  }
  // P?A+B*
  for (bool take_p : {true, false}) {
    if (take_p && !tekken_prefix(ch[i])) continue;
    const size_t j = take_p ? i + 1 : i;
    if (j < n && tekken_a(ch[j])) return run_while(ch, run_while(ch, j, tekken_a), tekken_b);
  }
  if (ch[i].flags & kN) return i + 1;  // \p{N}
  //  ?[^\s\p{L}\p{N}]+[\r\n/]*
  size_t j = i;
  if (ch[i].cp == ' ' && i + 1 < n && is_punct(ch[i + 1])) j = i + 1;
  if (is_punct(ch[j])) {
    j = run_while(ch, j, is_punct);
    return run_while(ch, j, [](const Ch& c) { return is_newline(c.cp) || c.cp == '/'; });
  }
  if (ch[i].flags & kWs) return match_whitespace(ch, i, /*newline_alt=*/true);
  return i + 1;  // unreachable: every character is L, N, whitespace or other
}

// A span of a piece and whether the split pattern matched it.
struct FlaggedSpan {
  uint32_t begin, end;
  bool match;
};

// Hugging Face's NormalizedString::split: turn the matches and gaps into the
// pieces a behaviour keeps.
void apply_behavior(const Piece& piece, std::vector<FlaggedSpan>& spans, SplitBehavior behavior, bool invert,
                    std::vector<Piece>* out) {
  if (invert) {
    for (FlaggedSpan& s : spans) s.match = !s.match;
  }
  thread_local std::vector<FlaggedSpan> acc;
  acc.clear();
  switch (behavior) {
    case SplitBehavior::kIsolated:
      acc = spans;
      break;
    case SplitBehavior::kRemoved:
      for (const FlaggedSpan& s : spans) {
        if (!s.match) acc.push_back(s);
      }
      break;
    case SplitBehavior::kContiguous: {
      bool prev = false;
      for (const FlaggedSpan& s : spans) {
        if (s.match == prev && !acc.empty()) acc.back().end = s.end;
        else acc.push_back(s);
        prev = s.match;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool prev = false;
      for (const FlaggedSpan& s : spans) {
        if (s.match && !prev && !acc.empty()) acc.back().end = s.end;
        else acc.push_back(s);
        prev = s.match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool prev = false;
      for (size_t k = spans.size(); k-- > 0;) {
        const FlaggedSpan& s = spans[k];
        if (s.match && !prev && !acc.empty()) acc.back().begin = s.begin;
        else acc.push_back(s);
        prev = s.match;
      }
      std::reverse(acc.begin(), acc.end());
      break;
    }
  }
  for (const FlaggedSpan& s : acc) {
    if (s.end > s.begin) out->push_back(Piece{piece.text.substr(s.begin, s.end - s.begin), piece.at_origin && s.begin == 0});
  }
  release_if_large(acc);
}

// Matches of a literal (non-empty) string and the gaps between them.
void literal_spans(std::string_view text, std::string_view lit, std::vector<FlaggedSpan>* spans) {
  size_t from = 0;
  for (size_t at = text.find(lit); at != std::string_view::npos; at = text.find(lit, from)) {
    if (at > from) spans->push_back(FlaggedSpan{static_cast<uint32_t>(from), static_cast<uint32_t>(at), false});
    spans->push_back(FlaggedSpan{static_cast<uint32_t>(at), static_cast<uint32_t>(at + lit.size()), true});
    from = at + lit.size();
  }
  if (from < text.size()) {
    spans->push_back(FlaggedSpan{static_cast<uint32_t>(from), static_cast<uint32_t>(text.size()), false});
  }
}

void regex_spans(SplitPattern pattern, std::string_view text, std::vector<PieceSpan>* scratch,
                 std::vector<FlaggedSpan>* spans) {
  scratch->clear();
  find_matches(pattern, text, scratch);  // the matches cover the text: no gaps
  for (const PieceSpan& s : *scratch) spans->push_back(FlaggedSpan{s.begin, s.end, true});
}

}  // namespace

StatusOr<SplitPattern> parse_split_pattern(std::string_view regex) {
  if (regex == kLlama3Regex) return SplitPattern::kLlama3;
  if (regex == kQwen2Regex) return SplitPattern::kQwen2;
  if (regex == kGpt2Regex) return SplitPattern::kGpt2;
  if (regex == kTekkenRegex) return SplitPattern::kTekken;
  return Unimplemented(
      "pre-tokenizer regex not supported (only the GPT-2, Llama 3, Qwen2 and tekken patterns are): " +
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
      case SplitPattern::kTekken: j = match_tekken(ch, i); break;
      default: j = match_gpt2(ch, i); break;
    }
    matches->push_back(PieceSpan{offset(i), offset(j)});
    i = j;
  }
}

namespace {

using json = nlohmann::json;

StatusOr<SplitBehavior> parse_behavior(const json& p, const std::string& key) {
  if (!p.contains("behavior") || !p["behavior"].is_string()) return InvalidArgument(key + ".behavior must be a string");
  const std::string b = p["behavior"].get<std::string>();
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  return InvalidArgument(key + ".behavior: unknown split behaviour " + b);
}

StatusOr<PreTokenizerStep> parse_step(const json& p, const std::string& key) {
  if (!p.is_object() || !p.contains("type") || !p["type"].is_string()) {
    return InvalidArgument(key + " must be an object with a string \"type\"");
  }
  const std::string t = p["type"].get<std::string>();
  PreTokenizerStep step;
  if (t == "Split") {
    if (!p.contains("pattern") || !p["pattern"].is_object()) return InvalidArgument(key + ".pattern is missing");
    const json& pat = p["pattern"];
    if (pat.contains("Regex") && pat["Regex"].is_string()) {
      step.kind = PreTokenizerStep::Kind::kSplitRegex;
      StatusOr<SplitPattern> sp = parse_split_pattern(pat["Regex"].get<std::string>());
      if (!sp.ok()) return Status(sp.status().code(), key + ".pattern.Regex: " + sp.status().message());
      step.pattern = *sp;
    } else if (pat.contains("String") && pat["String"].is_string()) {
      step.kind = PreTokenizerStep::Kind::kSplitString;
      step.literal = pat["String"].get<std::string>();
      if (step.literal.empty()) return Unimplemented(key + ".pattern: an empty String pattern is not supported");
    } else {
      return InvalidArgument(key + ".pattern must be {\"Regex\": ...} or {\"String\": ...}");
    }
    KR_ASSIGN_OR_RETURN(step.behavior, parse_behavior(p, key));
    if (p.contains("invert") && !p["invert"].is_boolean()) return InvalidArgument(key + ".invert must be a bool");
    step.invert = p.value("invert", false);
  } else if (t == "Metaspace") {
    step.kind = PreTokenizerStep::Kind::kMetaspace;
    if (!p.contains("replacement") || !p["replacement"].is_string()) {
      return InvalidArgument(key + ".replacement must be a string");
    }
    step.replacement = p["replacement"].get<std::string>();
    size_t len = 0;
    if (step.replacement.empty() || (unicode::decode_utf8(step.replacement, 0, &len), len != step.replacement.size())) {
      return InvalidArgument(key + ".replacement must be one character");
    }
    // prepend_scheme defaults to always; add_prefix_space false (the older
    // form) means never, as tokenizers' deserializer reads it.
    step.prepend_scheme = PrependScheme::kAlways;
    if (p.contains("prepend_scheme") && !p["prepend_scheme"].is_null()) {
      const std::string s = p["prepend_scheme"].is_string() ? p["prepend_scheme"].get<std::string>() : "";
      if (s == "always") step.prepend_scheme = PrependScheme::kAlways;
      else if (s == "first") step.prepend_scheme = PrependScheme::kFirst;
      else if (s == "never") step.prepend_scheme = PrependScheme::kNever;
      else return InvalidArgument(key + ".prepend_scheme must be always, first or never");
    }
    if (p.contains("add_prefix_space") && p["add_prefix_space"].is_boolean() && !p["add_prefix_space"].get<bool>()) {
      if (step.prepend_scheme != PrependScheme::kNever && p.contains("prepend_scheme")) {
        return InvalidArgument(key + ": add_prefix_space false contradicts prepend_scheme");
      }
      step.prepend_scheme = PrependScheme::kNever;
    }
    if (p.contains("split") && !p["split"].is_null()) {
      if (!p["split"].is_boolean()) return InvalidArgument(key + ".split must be a bool");
      step.metaspace_split = p["split"].get<bool>();
    }
  } else if (t == "ByteLevel") {
    step.kind = PreTokenizerStep::Kind::kByteLevel;
    step.add_prefix_space = p.value("add_prefix_space", true);
    step.use_regex = p.value("use_regex", true);
  } else {
    return Unimplemented(key + ".type: pre-tokenizer " + t +
                         " is not supported (supported: Split, Metaspace, ByteLevel, Sequence)");
  }
  return step;
}

}  // namespace

StatusOr<PreTokenizer> PreTokenizer::from_json(std::string_view pre_tokenizer_json) {
  try {
    const json j = json::parse(pre_tokenizer_json);
    if (j.is_null()) return PreTokenizer();
    std::vector<std::pair<const json*, std::string>> list;
    if (j.is_object() && j.value("type", std::string()) == "Sequence") {
      if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array()) {
        return InvalidArgument("pre_tokenizer.pretokenizers must be a list");
      }
      size_t i = 0;
      for (const auto& p : j["pretokenizers"]) list.emplace_back(&p, "pre_tokenizer.pretokenizers[" + std::to_string(i++) + "]");
    } else {
      list.emplace_back(&j, "pre_tokenizer");
    }
    std::vector<PreTokenizerStep> steps;
    bool inserted_before = false;  // an earlier step can insert text at a piece's head
    for (const auto& [p, key] : list) {
      if (!steps.empty() && steps.back().kind == PreTokenizerStep::Kind::kByteLevel) {
        return Unimplemented(key + ": a pre-tokenizer after ByteLevel is not supported");
      }
      KR_ASSIGN_OR_RETURN(PreTokenizerStep step, parse_step(*p, key));
      if (step.kind == PreTokenizerStep::Kind::kMetaspace && step.prepend_scheme == PrependScheme::kFirst &&
          inserted_before) {
        return Unimplemented(key + ": Metaspace prepend_scheme first after a step that inserts text is not supported");
      }
      if ((step.kind == PreTokenizerStep::Kind::kMetaspace && step.prepend_scheme != PrependScheme::kNever) ||
          (step.kind == PreTokenizerStep::Kind::kByteLevel && step.add_prefix_space)) {
        inserted_before = true;
      }
      steps.push_back(std::move(step));
    }
    return PreTokenizer(std::move(steps));
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("pre_tokenizer: ") + e.what());
  }
}

PreTokenizer::PreTokenizer(std::vector<PreTokenizerStep> steps) : steps_(std::move(steps)) {
  for (const PreTokenizerStep& s : steps_) byte_level_ = byte_level_ || s.kind == PreTokenizerStep::Kind::kByteLevel;
}

bool PreTokenizer::may_insert_at_head() const {
  for (const PreTokenizerStep& s : steps_) {
    if (s.kind == PreTokenizerStep::Kind::kMetaspace && s.prepend_scheme != PrependScheme::kNever) return true;
    if (s.kind == PreTokenizerStep::Kind::kByteLevel && s.add_prefix_space) return true;
  }
  return false;
}

bool PreTokenizer::uses_first_scheme() const {
  for (const PreTokenizerStep& s : steps_) {
    if (s.kind == PreTokenizerStep::Kind::kMetaspace && s.prepend_scheme == PrependScheme::kFirst) return true;
  }
  return false;
}

void PreTokenizer::split(std::string_view text, bool at_origin, std::vector<Piece>* pieces,
                         std::vector<PieceSpan>* scratch, std::deque<std::string>* storage) const {
  if (text.empty()) return;
  const size_t first = pieces->size();
  pieces->push_back(Piece{text, at_origin});
  thread_local std::vector<Piece> current;
  thread_local std::vector<FlaggedSpan> spans;
  for (const PreTokenizerStep& step : steps_) {
    current.assign(pieces->begin() + static_cast<ptrdiff_t>(first), pieces->end());
    pieces->resize(first);
    for (Piece piece : current) {
      spans.clear();
      switch (step.kind) {
        case PreTokenizerStep::Kind::kSplitRegex:
          if (step.behavior == SplitBehavior::kIsolated) {
            // The common case (every byte-level tokenizer): each match is a piece.
            scratch->clear();
            find_matches(step.pattern, piece.text, scratch);
            for (const PieceSpan& m : *scratch) {
              pieces->push_back(Piece{piece.text.substr(m.begin, m.end - m.begin), piece.at_origin && m.begin == 0});
            }
            break;
          }
          regex_spans(step.pattern, piece.text, scratch, &spans);
          apply_behavior(piece, spans, step.behavior, step.invert, pieces);
          break;
        case PreTokenizerStep::Kind::kSplitString:
          literal_spans(piece.text, step.literal, &spans);
          apply_behavior(piece, spans, step.behavior, step.invert, pieces);
          break;
        case PreTokenizerStep::Kind::kMetaspace: {
          // Spaces become the replacement; then the prefix; then a split
          // before each replacement character (MergedWithNext).
          std::string& s = storage->emplace_back();
          s.reserve(piece.text.size() + 8);
          const std::string_view rep = step.replacement;
          const bool starts_with_rep = piece.text.substr(0, 1) == " " || piece.text.substr(0, rep.size()) == rep;
          if (!starts_with_rep && (step.prepend_scheme == PrependScheme::kAlways ||
                                   (step.prepend_scheme == PrependScheme::kFirst && piece.at_origin))) {
            s.append(rep);
          }
          for (char c : piece.text) {
            if (c == ' ') s.append(rep);
            else s.push_back(c);
          }
          const Piece replaced{s, piece.at_origin};
          if (step.metaspace_split) {
            literal_spans(s, rep, &spans);
            apply_behavior(replaced, spans, SplitBehavior::kMergedWithNext, false, pieces);
          } else {
            pieces->push_back(replaced);
          }
          break;
        }
        case PreTokenizerStep::Kind::kByteLevel: {
          Piece p = piece;
          if (step.add_prefix_space && p.text.front() != ' ') {
            std::string& s = storage->emplace_back();
            s.reserve(p.text.size() + 1);
            s.push_back(' ');
            s.append(p.text);
            p.text = s;
          }
          if (step.use_regex) {
            regex_spans(SplitPattern::kGpt2, p.text, scratch, &spans);
            apply_behavior(p, spans, SplitBehavior::kIsolated, false, pieces);
          } else {
            pieces->push_back(p);
          }
          break;
        }
      }
    }
  }
  release_if_large(current);
  release_if_large(spans);
}

}  // namespace kr
