// Reasoning parser: splits a model's "<think> ... </think>" block from its
// answer, for `--reasoning-parser qwen3|deepseek_r1` (the names and semantics
// of vLLM's parsers, vllm/reasoning/{qwen3,deepseek_r1}_reasoning_parser.py),
// into the response's message.reasoning_content / delta.reasoning_content and
// content.
//
// Semantics (both parsers):
//  - The output starts inside the think block unless the prompt already closed
//    it (ReasoningStart): DeepSeek-R1's template, and Qwen3.5's, put "<think>"
//    in the prompt, so the output may hold only "</think>"; a model that writes
//    "<think>" itself first (Qwen3, QwQ-style) has it removed, with any
//    whitespace before it. Everything up to the first "</think>" is
//    reasoning, everything after it content (raw: "\n\nThe answer" keeps its
//    newlines; later think tags are content).
//  - No "</think>" at all (a block cut off by max_tokens, or a model that did
//    not think): everything is reasoning, as vLLM answers.
//  - The prompt closed the block (Qwen3 with enable_thinking=false renders
//    "<think>\n\n</think>\n\n" into it): everything is content.
//  - qwen3 only: "<tool_call>" followed (after whitespace) by "<function=" or
//    "<function " also ends the reasoning, the tool call being content (Qwen3.5
//    may call a tool without closing the block, as vLLM's qwen3 parser allows).
//    Whichever comes first, "</think>" or such a tool call, ends it (vLLM's
//    non-streaming path prefers a later "</think>"; here both forms agree).
//
// Streaming: reasoning_push() takes each text delta (from the incremental
// detokenizer) and returns the reasoning and content that are now final;
// reasoning_finish() returns what was held back at the end. Text that could
// still be the start of a tag ("</thi") is held back until the next delta
// decides, so a tag is never split across outputs and never leaks into them.
// split_reasoning() runs the same machine over a whole output, so streamed and
// non-streamed responses always agree. Empty strings mean nothing to send.
//
// Wiring (not done here): the server picks the parser (flag, or
// detect_reasoning_parser() on the model's template), computes
// reasoning_start_from_prompt() on the rendered chat prompt of each request,
// and feeds the detokenized deltas. Usage counts all tokens either way.
//
// Threading: pure functions; a ReasoningState is one stream's state (one
// thread at a time).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace kr {

enum class ReasoningParserKind { kNone, kQwen3, kDeepSeekR1 };

// "qwen3" or "deepseek_r1" (InvalidArgument naming the valid ones otherwise).
StatusOr<ReasoningParserKind> parse_reasoning_parser_name(std::string_view name);
const char* reasoning_parser_name(ReasoningParserKind kind);  // "" for kNone

// Which parser a chat template calls for: kNone unless its source mentions
// "<think>" or "</think>"; kDeepSeekR1 when its generation prompt opens the
// block (`rendered_prompt`: the template rendered for one user message with
// add_generation_prompt, ending in "<think>" or "<think>\n"); else kQwen3.
ReasoningParserKind detect_reasoning_parser(std::string_view template_source, std::string_view rendered_prompt);

// Where a generation starts, from the end of its rendered prompt (trailing
// whitespace ignored): after "<think>" inside the block, after "</think>" in
// the content, otherwise where the model may first write "<think>".
enum class ReasoningStart { kMayOpen, kInReasoning, kInContent };
ReasoningStart reasoning_start_from_prompt(std::string_view prompt_text);

struct ReasoningDelta {
  std::string reasoning;
  std::string content;
};

struct ReasoningState {
  enum class Phase { kOpening, kReasoning, kContent };
  ReasoningParserKind kind = ReasoningParserKind::kQwen3;
  Phase phase = Phase::kOpening;
  std::string held;  // text not yet classified (a possible tag or its start)
};

ReasoningState reasoning_begin(ReasoningParserKind kind, ReasoningStart start);
ReasoningDelta reasoning_push(ReasoningState* state, std::string_view text);
ReasoningDelta reasoning_finish(ReasoningState* state);
// Whether the stream is (still) in the think block.
inline bool reasoning_open(const ReasoningState& s) { return s.phase != ReasoningState::Phase::kContent; }

// A whole output: reasoning and content, nullopt where empty.
struct ReasoningSplit {
  std::optional<std::string> reasoning;
  std::optional<std::string> content;
};
ReasoningSplit split_reasoning(ReasoningParserKind kind, ReasoningStart start, std::string_view output);

}  // namespace kr
