// The reasoning parser against vLLM's qwen3 / deepseek_r1 semantics, whole
// and streamed in every way of cutting the output (the streamed pieces must
// add up to the whole-output split, so no tag is ever split or leaked).
#include "server/reasoning_parser.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

namespace kr {
namespace {

using K = ReasoningParserKind;
using S = ReasoningStart;

struct Case {
  K kind;
  S start;
  std::string output;
  std::optional<std::string> reasoning, content;
};

const Case kCases[] = {
    // DeepSeek-R1: the template opened the block; the output closes it.
    {K::kDeepSeekR1, S::kInReasoning, "Let me think.</think>The answer is 4.", "Let me think.", "The answer is 4."},
    // The model opens the block itself (Qwen3): the tag goes, newlines stay.
    {K::kQwen3, S::kMayOpen, "<think>\nhmm\n</think>\n\nAnswer", "\nhmm\n", "\n\nAnswer"},
    {K::kDeepSeekR1, S::kMayOpen, "\n\n<think>x</think>y", "x", "y"},
    // Cut off by max_tokens: all reasoning.
    {K::kQwen3, S::kMayOpen, "<think>\nstill thinking", "\nstill thinking", std::nullopt},
    {K::kDeepSeekR1, S::kInReasoning, "still thinking </thi", "still thinking </thi", std::nullopt},
    // No tags at all: vLLM takes it as (truncated) reasoning.
    {K::kQwen3, S::kMayOpen, "Just an answer", "Just an answer", std::nullopt},
    // The prompt closed the block (enable_thinking=false): all content.
    {K::kQwen3, S::kInContent, "Hello </think> there", std::nullopt, "Hello </think> there"},
    // Stops right after the block.
    {K::kDeepSeekR1, S::kInReasoning, "x</think>", "x", std::nullopt},
    {K::kDeepSeekR1, S::kInReasoning, "</think>only content", std::nullopt, "only content"},
    // Only the first block is reasoning.
    {K::kQwen3, S::kMayOpen, "a</think>b<think>c</think>", "a", "b<think>c</think>"},
    // Not the tag.
    {K::kQwen3, S::kMayOpen, "<thinking>x", "<thinking>x", std::nullopt},
    {K::kQwen3, S::kMayOpen, "   ", "   ", std::nullopt},
    // qwen3: a tool call ends the block (vLLM's Qwen3.5 rule); deepseek_r1 knows no such rule.
    {K::kQwen3, S::kInReasoning, "need a tool\n<tool_call>\n<function=get_weather>\n</function>\n</tool_call>",
     "need a tool\n", "<tool_call>\n<function=get_weather>\n</function>\n</tool_call>"},
    {K::kDeepSeekR1, S::kInReasoning, "need a tool\n<tool_call>\n<function=f>", "need a tool\n<tool_call>\n<function=f>",
     std::nullopt},
    // A mere mention of <tool_call> is reasoning.
    {K::kQwen3, S::kInReasoning, "I could use <tool_call> here</think>ok", "I could use <tool_call> here", "ok"},
    {K::kQwen3, S::kInReasoning, "<tool_call><functional></think>ok", "<tool_call><functional>", "ok"},
    {K::kQwen3, S::kInReasoning, "<tool_call>\n<func", "<tool_call>\n<func", std::nullopt},
    // No parser: all content.
    {K::kNone, S::kInReasoning, "<think>a</think>b", std::nullopt, "<think>a</think>b"},
};

std::string show(const std::optional<std::string>& s) { return s ? "\"" + *s + "\"" : "null"; }

TEST(ReasoningParser, WholeOutputs) {
  for (const Case& c : kCases) {
    const ReasoningSplit r = split_reasoning(c.kind, c.start, c.output);
    EXPECT_EQ(r.reasoning, c.reasoning) << c.output << ": reasoning " << show(r.reasoning);
    EXPECT_EQ(r.content, c.content) << c.output << ": content " << show(r.content);
  }
}

// Streams `pieces` and checks the deltas against the whole-output split.
void check_stream(const Case& c, const std::vector<std::string>& pieces) {
  ReasoningState s = reasoning_begin(c.kind, c.start);
  std::string reasoning, content;
  for (const std::string& p : pieces) {
    const ReasoningDelta d = reasoning_push(&s, p);
    reasoning += d.reasoning;
    content += d.content;
    // Once content has started, no more reasoning arrives.
    if (!content.empty()) {
      ASSERT_FALSE(reasoning_open(s)) << c.output;
    }
  }
  const ReasoningDelta d = reasoning_finish(&s);
  reasoning += d.reasoning;
  content += d.content;
  std::string joined;
  for (const std::string& p : pieces) joined += p + "|";
  EXPECT_EQ(reasoning, c.reasoning.value_or("")) << "pieces " << joined;
  EXPECT_EQ(content, c.content.value_or("")) << "pieces " << joined;
}

TEST(ReasoningParser, StreamedEveryWay) {
  for (const Case& c : kCases) {
    const std::string& t = c.output;
    check_stream(c, {t});
    std::vector<std::string> chars;
    for (char ch : t) chars.emplace_back(1, ch);
    check_stream(c, chars);
    for (size_t i = 0; i <= t.size(); ++i) {
      for (size_t j = i; j <= t.size(); ++j) check_stream(c, {t.substr(0, i), t.substr(i, j - i), t.substr(j)});
    }
  }
}

TEST(ReasoningParser, HoldsBackAPossibleTagOnly) {
  ReasoningState s = reasoning_begin(K::kDeepSeekR1, S::kInReasoning);
  ReasoningDelta d = reasoning_push(&s, "abc </th");
  EXPECT_EQ(d.reasoning, "abc ");
  d = reasoning_push(&s, "ink>\n\nHi");
  EXPECT_EQ(d.reasoning, "");
  EXPECT_EQ(d.content, "\n\nHi");
  // A '<' that cannot start a tag is not held.
  ReasoningState q = reasoning_begin(K::kQwen3, S::kInReasoning);
  EXPECT_EQ(reasoning_push(&q, "a <b").reasoning, "a <b");
  EXPECT_EQ(reasoning_push(&q, "x < y").reasoning, "x < y");
  // Waiting for "<think>" at the start: whitespace and a partial tag are held.
  ReasoningState o = reasoning_begin(K::kQwen3, S::kMayOpen);
  EXPECT_EQ(reasoning_push(&o, "\n<thi").reasoning, "");
  EXPECT_EQ(reasoning_push(&o, "nk>deep").reasoning, "deep");
}

TEST(ReasoningParser, NamesAndDetection) {
  EXPECT_EQ(*parse_reasoning_parser_name("qwen3"), K::kQwen3);
  EXPECT_EQ(*parse_reasoning_parser_name("deepseek_r1"), K::kDeepSeekR1);
  auto bad = parse_reasoning_parser_name("granite");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("qwen3, deepseek_r1"), std::string::npos);
  EXPECT_STREQ(reasoning_parser_name(K::kDeepSeekR1), "deepseek_r1");

  std::ifstream in(std::string(KR_SOURCE_DIR) + "/tests/golden/qwen3-tokenizer/tokenizer_config.json");
  std::stringstream qwen3;
  qwen3 << in.rdbuf();
  ASSERT_FALSE(qwen3.str().empty());
  EXPECT_EQ(detect_reasoning_parser(qwen3.str(), "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n"), K::kQwen3);
  // DeepSeek-R1-distill style: the generation prompt opens the block.
  const std::string r1 = "{{ bos_token }}...{% if add_generation_prompt %}{{'<｜Assistant｜><think>\\n'}}{% endif %}";
  EXPECT_EQ(detect_reasoning_parser(r1, "<｜begin▁of▁sentence｜><｜User｜>x<｜Assistant｜><think>\n"), K::kDeepSeekR1);
  EXPECT_EQ(detect_reasoning_parser("{{ messages[0].content }}", "x"), K::kNone);

  // Per request: where the rendered prompt leaves the generation.
  EXPECT_EQ(reasoning_start_from_prompt("<|im_start|>assistant\n<think>\n\n</think>\n\n"), S::kInContent);
  EXPECT_EQ(reasoning_start_from_prompt("<｜Assistant｜><think>\n"), S::kInReasoning);
  EXPECT_EQ(reasoning_start_from_prompt("<|im_start|>assistant\n"), S::kMayOpen);
  // History with an earlier block does not count: only the end of the prompt.
  EXPECT_EQ(reasoning_start_from_prompt("<think>a</think>b<|im_end|>\n<|im_start|>assistant\n"), S::kMayOpen);
}

}  // namespace
}  // namespace kr
