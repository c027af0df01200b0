// Grammar IR: a context-free grammar over bytes, the common target of every
// front end (JSON Schema, regex, GBNF, choices, free JSON) and the input of the
// automaton builder (automaton.h).
//
// A Grammar owns an arena of immutable expression nodes (ExprId indexes it)
// and a list of rules (nonterminals). Expressions form a DAG: the same ExprId
// may be used in several places. Code points are lowered to UTF-8 byte
// sequences by the front ends (utf8.h), so terminals are byte sets.
//
// Threading: a Grammar is built by one thread; a finished one may be read by
// any number of threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "grammar/byte_set.h"

namespace kr::grammar {

using ExprId = uint32_t;
inline constexpr uint32_t kUnbounded = 0xFFFFFFFFu;
inline constexpr ExprId kNoExpr = 0xFFFFFFFFu;

enum class ExprKind : uint8_t {
  kNothing,  // matches no string at all
  kEmpty,    // matches the empty string
  kBytes,    // one byte from a set (a = byte set index)
  kSeq,      // children in order (a = first child index, b = count)
  kAlt,      // any one of the children (a, b as kSeq)
  kRepeat,   // child a repeated min..max times (max may be kUnbounded)
  kRuleRef,  // nonterminal a
  kToken,    // one special token of the vocabulary (a = token terminal index)
  kAnd,      // strings matched by both a and b (both regular: no rule refs, no tokens)
  kMinus,    // strings matched by a and not by b (both regular)
  kList,     // ordered list: items children[a .. a+b), each present or (when
             // optional) absent, in order, with children[a+b] (the separator)
             // between present ones, then any number of children[a+b+1]
             // (extra items, kNothing for none); at least one item present.
             // list_required(e, i): item i must be present.
};

struct Expr {
  ExprKind kind = ExprKind::kNothing;
  uint32_t a = 0;
  uint32_t b = 0;
  uint32_t min = 0;
  uint32_t max = 0;
};

// A special token used as a terminal: by id (GBNF `<[128010]>`), or by its
// exact text (GBNF `<|python_tag|>`), resolved against the vocabulary's special
// tokens when the grammar is compiled for a vocabulary.
struct TokenTerminal {
  int32_t id = -1;
  std::string text;
};

struct Rule {
  std::string name;
  ExprId body = kNoExpr;
};

class Grammar {
 public:
  Grammar();

  // ---- builders (each returns a new or shared node) ----
  ExprId nothing() const { return nothing_; }
  ExprId empty() const { return empty_; }
  ExprId bytes(const ByteSet& set);
  ExprId byte(uint8_t b) { return bytes(ByteSet::of(b)); }
  ExprId literal(std::string_view text);  // the bytes of `text` in order
  ExprId seq(const std::vector<ExprId>& items);
  ExprId alt(const std::vector<ExprId>& items);
  ExprId repeat(ExprId e, uint32_t min, uint32_t max);
  ExprId optional(ExprId e) { return repeat(e, 0, 1); }
  ExprId star(ExprId e) { return repeat(e, 0, kUnbounded); }
  ExprId plus(ExprId e) { return repeat(e, 1, kUnbounded); }
  ExprId rule_ref(uint32_t rule);
  ExprId token(TokenTerminal t);
  ExprId intersect(ExprId a, ExprId b);
  ExprId minus(ExprId a, ExprId b);
  // See kList. `required[i]`: item i must be present.
  ExprId ordered_list(const std::vector<ExprId>& items, const std::vector<bool>& required, ExprId separator,
                      ExprId extra);
  bool list_required(const Expr& e, uint32_t i) const { return list_flags_[e.min + i] != 0; }

  // ---- rules ----
  uint32_t add_rule(std::string name);  // body unset until set_rule_body
  void set_rule_body(uint32_t rule, ExprId body) { rules_[rule].body = body; }
  // -1 when no rule has that name.
  int32_t find_rule(std::string_view name) const;
  void set_root(uint32_t rule) { root_ = rule; }

  // ---- reading ----
  uint32_t root() const { return root_; }
  const std::vector<Rule>& rules() const { return rules_; }
  const Expr& expr(ExprId id) const { return exprs_[id]; }
  const ExprId* children(const Expr& e) const { return children_.data() + e.a; }
  const ByteSet& byte_set(uint32_t index) const { return byte_sets_[index]; }
  const TokenTerminal& token_terminal(uint32_t index) const { return tokens_[index]; }
  size_t num_exprs() const { return exprs_.size(); }
  size_t num_token_terminals() const { return tokens_.size(); }

  // Checks that the root and every rule body are set and every rule reference
  // names an existing rule; an error names the first offender.
  Status validate() const;
  // Debug dump in a GBNF-like notation.
  std::string to_string() const;

 private:
  ExprId add(const Expr& e);

  std::vector<Expr> exprs_;
  std::vector<ExprId> children_;
  std::vector<ByteSet> byte_sets_;
  std::vector<TokenTerminal> tokens_;
  std::vector<uint8_t> list_flags_;
  std::vector<Rule> rules_;
  uint32_t root_ = 0;
  ExprId nothing_ = kNoExpr;
  ExprId empty_ = kNoExpr;
};

}  // namespace kr::grammar
