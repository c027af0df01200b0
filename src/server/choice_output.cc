#include "server/choice_output.h"

#include <random>

namespace kr {

std::string new_tool_call_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string s = "call_";
  for (int i = 0; i < 24; ++i) s += hex[rng() % 16];
  return s;
}

ChoiceOutput::ChoiceOutput(const OutputPlan& plan)
    : plan_reasoning_(plan.reasoning), start_(plan.reasoning_start), format_(plan.tool_calls) {
  if (plan.reasoning != ReasoningParserKind::kNone) reasoning_ = reasoning_begin(plan.reasoning, plan.reasoning_start);
  if (plan.tool_calls) tools_.emplace(*plan.tool_calls);
}

void ChoiceOutput::content_through_tools(std::string_view content, bool at_end, Delta* out) {
  if (!tools_) {
    out->content += content;
    return;
  }
  ToolCallStreamDelta d = tools_->push(content);
  if (at_end) {
    ToolCallStreamDelta rest = tools_->finish();
    d.content += rest.content;
    for (ToolCallDelta& c : rest.calls) d.calls.push_back(std::move(c));
  }
  out->content += d.content;
  for (ToolCallDelta& c : d.calls) {
    if (c.opens) {
      if (ids_.size() <= c.index) ids_.resize(c.index + 1);
      ids_[c.index] = c.id.empty() ? new_tool_call_id() : c.id;
      c.id = ids_[c.index];
    }
    out->calls.push_back(std::move(c));
  }
}

ChoiceOutput::Delta ChoiceOutput::push(std::string_view text) {
  Delta out;
  if (reasoning_) {
    ReasoningDelta r = reasoning_push(&*reasoning_, text);
    out.reasoning = std::move(r.reasoning);
    content_through_tools(r.content, false, &out);
  } else {
    content_through_tools(text, false, &out);
  }
  return out;
}

ChoiceOutput::Delta ChoiceOutput::finish() {
  Delta out;
  if (reasoning_) {
    ReasoningDelta r = reasoning_finish(&*reasoning_);
    out.reasoning = std::move(r.reasoning);
    content_through_tools(r.content, true, &out);
  } else {
    content_through_tools("", true, &out);
  }
  return out;
}

ChoiceOutput::Whole ChoiceOutput::whole(std::string_view text) const {
  Whole w;
  std::string content(text);
  if (plan_reasoning_ != ReasoningParserKind::kNone) {
    ReasoningSplit split = split_reasoning(plan_reasoning_, start_, text);
    w.reasoning = std::move(split.reasoning);
    content = split.content.value_or("");
  }
  if (!format_) {
    w.content = std::move(content);
    return w;
  }
  ToolCallParse p = parse_tool_calls(*format_, content);
  w.content = std::move(p.content);
  w.calls = std::move(p.calls);
  for (ToolCall& c : w.calls)
    if (c.id.empty()) c.id = new_tool_call_id();
  return w;
}

}  // namespace kr
