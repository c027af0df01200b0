// Parse stacks of the pushdown automaton and one-byte steps over them; shared
// by the matcher (persistent stacks of one sequence) and by the token-mask
// precomputation (stacks relative to one node, with unknown context below).
//
// A stack is a Handle: the top node plus the id of the frame below it. Frames
// (node, parent) are immutable and live in two arenas: `main` (the matcher's
// accepted stacks; rollback truncates it) and `scratch` (trial steps, reset
// freely). Parent ids encode where the frame lives, or a sentinel:
//   < 2^31           main frame
//   2^31 | i         scratch frame i
//   kWildBit | r     "some unknown context that called rule r" (mask precomputation)
//   kLocalBase       bottom of a precomputation stack: below it, the caller's
//                    context is unknown (popping it "escapes")
//   kBottom          the real bottom: popping it ends the output
//
// Threading: one StackContext per thread of use (it holds scratch memory).
#pragma once

#include <cstdint>
#include <vector>

#include "grammar/automaton.h"

namespace kr::grammar {

struct Handle {
  uint32_t node;
  uint32_t parent;
  bool operator==(const Handle& o) const { return node == o.node && parent == o.parent; }
};

struct Frame {
  uint32_t node;
  uint32_t parent;
  uint32_t escaped;  // the frame sits above a wildcard context (scratch only)
};

inline constexpr uint32_t kBottom = 0xFFFFFFFFu;
inline constexpr uint32_t kLocalBase = 0xFFFFFFFEu;
inline constexpr uint32_t kScratchBit = 0x80000000u;
inline constexpr uint32_t kWildBit = 0xC0000000u;

class StackContext {
 public:
  explicit StackContext(const Pda& pda) : pda_(pda), wild_stamp_(pda.num_nodes, 0) {}

  const Pda& pda() const { return pda_; }
  // Scratch for token-mask precomputation: node -> region-local index (-1).
  std::vector<int32_t>& region_index() {
    if (region_index_.empty()) region_index_.assign(pda_.num_nodes, -1);
    return region_index_;
  }
  std::vector<Frame>& main() { return main_; }
  std::vector<Frame>& scratch() { return scratch_; }
  void clear_scratch() { scratch_.clear(); }
  // Rule whose unknown caller kLocalBase stands for.
  void set_base_rule(uint32_t rule) { base_rule_ = rule; }

  static bool is_frame(uint32_t p) { return p < kWildBit; }
  static bool is_wild(uint32_t p) { return p >= kWildBit && p < kLocalBase; }
  const Frame& frame(uint32_t id) const {
    return (id & kScratchBit) ? scratch_[id & ~kScratchBit] : main_[id];
  }
  // Whether a stack with this parent depends on context below the local base.
  bool escaped(uint32_t parent) const {
    if (parent == kLocalBase || parent == kBottom) return false;
    if (is_wild(parent)) return true;
    return frame(parent).escaped != 0;
  }

  // Appends the stacks reached from h by byte b to `out` (deduplicated).
  // persistent: new frames go to the main arena (else scratch).
  void step_byte(Handle h, uint8_t b, std::vector<Handle>& out, bool persistent) {
    ++stamp_;
    step_byte_impl(h, b, out, persistent);
  }
  // The same for a special-token terminal.
  void step_token(Handle h, uint32_t terminal, std::vector<Handle>& out, bool persistent);
  // Every frame of the stack may end here (the output may stop).
  bool can_terminate(Handle h) const;
  // Adds h to out unless an equal stack is there.
  void add_unique(std::vector<Handle>& out, Handle h) const {
    for (const Handle& x : out) {
      if (x.node == h.node && same_parent(x.parent, h.parent)) return;
    }
    out.push_back(h);
  }
  bool same_parent(uint32_t a, uint32_t b) const;

 private:
  void step_byte_impl(Handle h, uint8_t b, std::vector<Handle>& out, bool persistent);
  uint32_t push(uint32_t node, uint32_t parent, bool persistent) {
    if (persistent) {
      main_.push_back({node, parent, 0});
      return static_cast<uint32_t>(main_.size() - 1);
    }
    scratch_.push_back({node, parent, escaped(parent) ? 1u : 0u});
    return kScratchBit | static_cast<uint32_t>(scratch_.size() - 1);
  }

  const Pda& pda_;
  std::vector<Frame> main_;
  std::vector<Frame> scratch_;
  std::vector<uint32_t> wild_stamp_;
  std::vector<int32_t> region_index_;
  uint32_t stamp_ = 0;
  uint32_t base_rule_ = 0;
};

}  // namespace kr::grammar
