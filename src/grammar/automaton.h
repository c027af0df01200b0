// Pushdown automaton (PDA) compiled from a Grammar, independent of any
// vocabulary. Each rule becomes a DFA over three kinds of symbols: bytes
// (grouped into byte classes shared by the whole grammar), calls of other
// rules, and special-token terminals. A node is one state of one rule's DFA;
// a parse stack is a list of nodes (the top node, then the return nodes of
// the open calls).
//
// Invariants established by build_pda (the matcher relies on them):
//  - a call always consumes at least one byte or token: calls target a rule's
//    non-nullable entry node, never a final one (nullable references get an
//    explicit bypass), so closing over calls and returns terminates;
//  - no left recursion (an error otherwise);
//  - trimmed: every node can reach a final node of its rule and every call
//    target can complete, so a live stack can always be completed;
//  - the root rule accepts at least one string (an error otherwise).
//
// Threading: immutable after build_pda; any number of threads may read it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "grammar/byte_set.h"
#include "grammar/grammar_ir.h"

namespace kr::grammar {

// Bounds on the work a grammar may cause (hostile input gets an error, not a
// hang): ~0.1-0.5 s of CPU at most; the JSON Schema corpus needs < 1% of it.
struct PdaLimits {
  uint32_t max_nfa_states = 1'000'000;  // per grammar, after expanding repeats
  uint32_t max_dfa_states = 200'000;    // per grammar, all rules together
  uint64_t max_work = 50'000'000;       // determinization steps
  uint32_t max_expr_depth = 2000;       // nesting of expressions
};

struct CallEdge {
  uint32_t rule = 0;
  uint32_t ret = 0;  // node to continue at after the callee completes
};

struct TokenEdge {
  uint32_t terminal = 0;  // index into Pda::token_terminals
  uint32_t target = 0;
};

struct Pda {
  static constexpr int32_t kNone = -1;

  // ---- nodes ----
  uint32_t num_nodes = 0;
  std::vector<uint32_t> node_rule;
  std::vector<uint8_t> node_final;     // the node's rule may end here
  std::vector<ByteSet> node_bytes;     // bytes with a byte transition from the node
  // Byte transitions: next[node * num_classes + byte_class[b]] or kNone.
  uint8_t byte_class[256] = {};
  uint32_t num_classes = 0;
  std::vector<int32_t> next;
  // Calls and token edges of each node (CSR: edges of n are [begin[n], begin[n+1])).
  std::vector<uint32_t> call_begin;
  std::vector<CallEdge> calls;
  std::vector<uint32_t> token_begin;
  std::vector<TokenEdge> token_edges;

  // ---- rules ----
  std::vector<std::string> rule_names;
  std::vector<uint32_t> rule_entry;            // non-final entry node, the target of calls
  std::vector<ByteSet> rule_first;             // bytes that can begin a call of the rule
  std::vector<std::vector<uint32_t>> rule_first_tokens;  // token terminals that can begin it
  std::vector<ByteSet> rule_follow;            // bytes that can follow the rule, any context
  std::vector<std::vector<uint32_t>> rule_returns;  // return nodes of all calls of the rule
  std::vector<uint8_t> rule_called;            // some node calls the rule
  uint32_t root_rule = 0;
  uint32_t root_start = 0;  // the root's start node (final when the empty output is accepted)

  std::vector<TokenTerminal> token_terminals;

  int32_t step(uint32_t node, uint8_t byte) const { return next[node * num_classes + byte_class[byte]]; }
  const CallEdge* calls_begin(uint32_t n) const { return calls.data() + call_begin[n]; }
  const CallEdge* calls_end(uint32_t n) const { return calls.data() + call_begin[n + 1]; }
  bool has_calls(uint32_t n) const { return call_begin[n + 1] != call_begin[n]; }
  size_t memory_bytes() const;
};

StatusOr<std::shared_ptr<const Pda>> build_pda(const Grammar& grammar, const PdaLimits& limits = {});

}  // namespace kr::grammar
