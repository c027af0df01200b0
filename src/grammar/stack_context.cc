#include "grammar/stack_context.h"

namespace kr::grammar {

bool StackContext::same_parent(uint32_t a, uint32_t b) const {
  for (;;) {
    if (a == b) return true;
    if (!is_frame(a) || !is_frame(b)) return false;
    const Frame& fa = frame(a);
    const Frame& fb = frame(b);
    if (fa.node != fb.node) return false;
    a = fa.parent;
    b = fb.parent;
  }
}

void StackContext::step_byte_impl(Handle h, uint8_t b, std::vector<Handle>& out, bool persistent) {
  for (;;) {
    const uint32_t n = h.node;
    const int32_t t = pda_.step(n, b);
    if (t >= 0) add_unique(out, {static_cast<uint32_t>(t), h.parent});
    for (const CallEdge* c = pda_.calls_begin(n); c != pda_.calls_end(n); ++c) {
      if (!pda_.rule_first[c->rule].test(b)) continue;
      const uint32_t f = push(c->ret, h.parent, persistent);
      step_byte_impl({pda_.rule_entry[c->rule], f}, b, out, persistent);
    }
    if (!pda_.node_final[n]) return;
    const uint32_t p = h.parent;
    if (p == kBottom) return;
    if (!is_frame(p)) {
      // Popping into unknown context: continue at every place the rule is called from.
      const uint32_t r = p == kLocalBase ? base_rule_ : (p & ~kWildBit);
      if (!pda_.rule_follow[r].test(b)) return;
      for (uint32_t ret : pda_.rule_returns[r]) {
        if (wild_stamp_[ret] == stamp_) continue;
        wild_stamp_[ret] = stamp_;
        step_byte_impl({ret, kWildBit | pda_.node_rule[ret]}, b, out, persistent);
      }
      return;
    }
    const Frame& f = frame(p);
    h = {f.node, f.parent};
  }
}

void StackContext::step_token(Handle h, uint32_t terminal, std::vector<Handle>& out, bool persistent) {
  for (;;) {
    const uint32_t n = h.node;
    for (uint32_t k = pda_.token_begin[n]; k < pda_.token_begin[n + 1]; ++k) {
      if (pda_.token_edges[k].terminal == terminal) add_unique(out, {pda_.token_edges[k].target, h.parent});
    }
    for (const CallEdge* c = pda_.calls_begin(n); c != pda_.calls_end(n); ++c) {
      bool can = false;
      for (uint32_t t : pda_.rule_first_tokens[c->rule]) can |= t == terminal;
      if (!can) continue;
      const uint32_t f = push(c->ret, h.parent, persistent);
      step_token({pda_.rule_entry[c->rule], f}, terminal, out, persistent);
    }
    if (!pda_.node_final[n] || !is_frame(h.parent)) return;
    const Frame& f = frame(h.parent);
    h = {f.node, f.parent};
  }
}

bool StackContext::can_terminate(Handle h) const {
  uint32_t n = h.node, p = h.parent;
  for (;;) {
    if (!pda_.node_final[n]) return false;
    if (p == kBottom) return true;
    if (!is_frame(p)) return false;
    const Frame& f = frame(p);
    n = f.node;
    p = f.parent;
  }
}

}  // namespace kr::grammar
