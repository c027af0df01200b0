#include "server/reasoning_parser.h"

namespace kr {
namespace {

constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";
constexpr std::string_view kToolCall = "<tool_call>";
constexpr std::string_view kFunction = "<function";

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim_right(std::string_view s) {
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Whether `s` is a proper prefix of `tag` (so more text could complete it).
bool proper_prefix_of(std::string_view s, std::string_view tag) { return s.size() < tag.size() && tag.substr(0, s.size()) == s; }

// After "<tool_call>": whitespace, then "<function" and a whitespace or '='
// (vLLM's check). kYes, kNo, or kMaybe when the text ends before it is decided.
enum class Verdict { kYes, kNo, kMaybe };
Verdict function_follows(std::string_view after) {
  size_t i = 0;
  while (i < after.size() && is_space(after[i])) ++i;
  const std::string_view r = after.substr(i);
  if (r.size() <= kFunction.size()) return kFunction.substr(0, r.size()) == r ? Verdict::kMaybe : Verdict::kNo;
  if (r.substr(0, kFunction.size()) != kFunction) return Verdict::kNo;
  const char c = r[kFunction.size()];
  return is_space(c) || c == '=' ? Verdict::kYes : Verdict::kNo;
}

// Inside the block: moves the reasoning before the first end of it (or before
// a possible start of one) to out. True when the block ended (the phase is
// now content), false when the rest must wait for more text.
bool scan_reasoning(ReasoningState* s, ReasoningDelta* out) {
  const std::string_view h = s->held;
  const bool qwen3 = s->kind == ReasoningParserKind::kQwen3;
  for (size_t p = h.find('<'); p != std::string_view::npos; p = h.find('<', p + 1)) {
    const std::string_view at = h.substr(p);
    if (at.substr(0, kClose.size()) == kClose) {
      out->reasoning.append(h.substr(0, p));
      s->held.erase(0, p + kClose.size());
      s->phase = ReasoningState::Phase::kContent;
      return true;
    }
    if (qwen3 && at.substr(0, kToolCall.size()) == kToolCall) {
      const Verdict v = function_follows(at.substr(kToolCall.size()));
      if (v == Verdict::kNo) continue;
      out->reasoning.append(h.substr(0, p));
      s->held.erase(0, p);  // the tool call (if it is one) is content
      if (v == Verdict::kMaybe) return false;
      s->phase = ReasoningState::Phase::kContent;
      return true;
    }
    if (proper_prefix_of(at, kClose) || (qwen3 && proper_prefix_of(at, kToolCall))) {
      out->reasoning.append(h.substr(0, p));
      s->held.erase(0, p);
      return false;
    }
  }
  out->reasoning.append(s->held);
  s->held.clear();
  return false;
}

}  // namespace

StatusOr<ReasoningParserKind> parse_reasoning_parser_name(std::string_view name) {
  if (name == "qwen3") return ReasoningParserKind::kQwen3;
  if (name == "deepseek_r1") return ReasoningParserKind::kDeepSeekR1;
  return InvalidArgument("unknown reasoning parser '" + std::string(name) + "' (supported: qwen3, deepseek_r1)");
}

const char* reasoning_parser_name(ReasoningParserKind kind) {
  switch (kind) {
    case ReasoningParserKind::kQwen3: return "qwen3";
    case ReasoningParserKind::kDeepSeekR1: return "deepseek_r1";
    case ReasoningParserKind::kNone: break;
  }
  return "";
}

ReasoningParserKind detect_reasoning_parser(std::string_view template_source, std::string_view rendered_prompt) {
  if (template_source.find(kOpen) == std::string_view::npos && template_source.find(kClose) == std::string_view::npos) {
    return ReasoningParserKind::kNone;
  }
  const std::string_view tail = trim_right(rendered_prompt);
  if (tail.size() >= kOpen.size() && tail.substr(tail.size() - kOpen.size()) == kOpen) {
    return ReasoningParserKind::kDeepSeekR1;
  }
  return ReasoningParserKind::kQwen3;
}

ReasoningStart reasoning_start_from_prompt(std::string_view prompt_text) {
  const std::string_view tail = trim_right(prompt_text);
  const auto ends_with = [&](std::string_view tag) {
    return tail.size() >= tag.size() && tail.substr(tail.size() - tag.size()) == tag;
  };
  if (ends_with(kClose)) return ReasoningStart::kInContent;
  if (ends_with(kOpen)) return ReasoningStart::kInReasoning;
  return ReasoningStart::kMayOpen;
}

ReasoningState reasoning_begin(ReasoningParserKind kind, ReasoningStart start) {
  ReasoningState s;
  s.kind = kind;
  switch (start) {
    case ReasoningStart::kMayOpen: s.phase = ReasoningState::Phase::kOpening; break;
    case ReasoningStart::kInReasoning: s.phase = ReasoningState::Phase::kReasoning; break;
    case ReasoningStart::kInContent: s.phase = ReasoningState::Phase::kContent; break;
  }
  if (kind == ReasoningParserKind::kNone) s.phase = ReasoningState::Phase::kContent;
  return s;
}

ReasoningDelta reasoning_push(ReasoningState* s, std::string_view text) {
  using Phase = ReasoningState::Phase;
  ReasoningDelta out;
  s->held.append(text);
  for (;;) {
    switch (s->phase) {
      case Phase::kOpening: {
        // An optional "<think>" first (after whitespace): dropped with the whitespace.
        size_t i = 0;
        while (i < s->held.size() && is_space(s->held[i])) ++i;
        const std::string_view rest = std::string_view(s->held).substr(i);
        if (rest.substr(0, kOpen.size()) == kOpen) {
          s->held.erase(0, i + kOpen.size());
          s->phase = Phase::kReasoning;
          continue;
        }
        if (proper_prefix_of(rest, kOpen)) return out;  // undecided (also: only whitespace so far)
        s->phase = Phase::kReasoning;  // no opening tag: the block is implicit
        continue;
      }
      case Phase::kReasoning:
        if (!scan_reasoning(s, &out)) return out;
        continue;
      case Phase::kContent:
        out.content.append(s->held);
        s->held.clear();
        return out;
    }
  }
}

ReasoningDelta reasoning_finish(ReasoningState* s) {
  ReasoningDelta out;
  // What was held is not a tag: text of the phase it is in.
  if (s->phase == ReasoningState::Phase::kContent) out.content = std::move(s->held);
  else out.reasoning = std::move(s->held);
  s->held.clear();
  return out;
}

ReasoningSplit split_reasoning(ReasoningParserKind kind, ReasoningStart start, std::string_view output) {
  ReasoningState s = reasoning_begin(kind, start);
  ReasoningDelta a = reasoning_push(&s, output);
  const ReasoningDelta b = reasoning_finish(&s);
  a.reasoning += b.reasoning;
  a.content += b.content;
  ReasoningSplit r;
  if (!a.reasoning.empty()) r.reasoning = std::move(a.reasoning);
  if (!a.content.empty()) r.content = std::move(a.content);
  return r;
}

}  // namespace kr
