#include "grammar/compiled_grammar.h"

#include <algorithm>
#include <ctime>
#include <unordered_map>

namespace kr::grammar {

namespace {
// Largest region (local states) walked as one automaton; tokens that run past
// it leave through an exit and are walked with the full grammar (a safety
// bound: the depth limit below usually ends regions first).
constexpr uint32_t kMaxRegionStates = 768;
// A region stops at narrow states (at most this many bytes continue: the state
// after a JSON string's closing quote, say): tokens that continue past one are
// few and walked directly, and without the narrow tail (object keys and the
// like) the regions of string bodies, numbers and the like are the same in
// every grammar and share one walk.
constexpr int kNarrowBytes = 6;
// Regions stop at this depth (bytes from the node); the few longer tokens
// continue past it in the direct walk. Keeps keys small for long chains
// (positions in a length-bounded string: ~10 states per character).
constexpr uint32_t kMaxRegionDepth = 32;
// Parse stacks followed at once while walking tokens that leave a region.
constexpr size_t kMaxLocalStacks = 256;
}  // namespace

StatusOr<std::shared_ptr<const CompiledGrammar>> CompiledGrammar::create(std::shared_ptr<const Pda> pda,
                                                                         std::shared_ptr<const TokenVocabulary> vocab) {
  std::shared_ptr<CompiledGrammar> g(new CompiledGrammar());
  for (const TokenTerminal& t : pda->token_terminals) {
    int32_t id = t.id;
    if (id >= 0) {
      if (static_cast<size_t>(id) >= vocab->size()) {
        return InvalidArgument("token <[" + std::to_string(id) + "]> is outside the vocabulary (size " +
                               std::to_string(vocab->size()) + ")");
      }
    } else {
      id = vocab->find_special(t.text);
      if (id < 0) {
        for (size_t i = 0; i < vocab->size() && id < 0; ++i) {
          if (vocab->token(static_cast<int32_t>(i)) == t.text) id = static_cast<int32_t>(i);
        }
      }
      if (id < 0) return InvalidArgument("token " + t.text + " is not in the vocabulary");
    }
    g->terminal_tokens_.push_back(id);
    g->token_terminal_.push_back({id, static_cast<int32_t>(g->terminal_tokens_.size() - 1)});
  }
  std::sort(g->token_terminal_.begin(), g->token_terminal_.end());
  for (int b = 255; b >= 0; --b) g->class_rep_[pda->byte_class[b]] = static_cast<uint8_t>(b);
  g->masks_ = std::make_unique<std::atomic<const NodeMask*>[]>(pda->num_nodes);
  for (uint32_t i = 0; i < pda->num_nodes; ++i) g->masks_[i].store(nullptr, std::memory_order_relaxed);
  g->pda_ = std::move(pda);
  g->vocab_ = std::move(vocab);
  return std::shared_ptr<const CompiledGrammar>(std::move(g));
}

CompiledGrammar::~CompiledGrammar() {
  if (!masks_) return;
  for (uint32_t i = 0; i < pda_->num_nodes; ++i) delete masks_[i].load(std::memory_order_acquire);
}

std::vector<uint32_t> CompiledGrammar::terminals_of(int32_t token) const {
  std::vector<uint32_t> out;
  auto it = std::lower_bound(token_terminal_.begin(), token_terminal_.end(), std::make_pair(token, -1));
  for (; it != token_terminal_.end() && it->first == token; ++it) out.push_back(static_cast<uint32_t>(it->second));
  return out;
}

const NodeMask& CompiledGrammar::node_mask(uint32_t n, StackContext& ctx) const {
  const NodeMask* m = masks_[n].load(std::memory_order_acquire);
  if (m) return *m;
  auto fresh = std::make_unique<NodeMask>(compute(n, ctx));
  const NodeMask* expected = nullptr;
  if (masks_[n].compare_exchange_strong(expected, fresh.get(), std::memory_order_acq_rel)) {
    computed_.fetch_add(1, std::memory_order_relaxed);
    return *fresh.release();
  }
  return *expected;  // another thread published first
}

NodeMask CompiledGrammar::compute(uint32_t n, StackContext& ctx) const {
  timespec ts0;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts0);
  const Pda& P = *pda_;
  const TokenVocabulary& V = *vocab_;
  const uint32_t ncls = P.num_classes;
  const uint32_t rule = P.node_rule[n];

  NodeMask mask;
  std::vector<uint32_t> nodes{n};
  std::vector<uint16_t> depth{0};  // BFS depth (bytes from n) of each region state
  std::vector<uint16_t> grid;      // nodes.size() x ncls
  {
    // ---- the region of n: states reached by unambiguous byte steps ----
    // Narrow states other than n are frontier states: in the region (so their
    // dead bytes reject tokens in the fast walk) but not expanded (their
    // continuations leave the region).
    std::vector<int32_t>& local = ctx.region_index();
    local[n] = 0;
    for (size_t i = 0; i < nodes.size(); ++i) {
      const uint32_t q = nodes[i];
      const bool frontier = i > 0 && (P.node_bytes[q].count() <= kNarrowBytes || depth[i] >= kMaxRegionDepth);
      ByteSet ambiguous;
      for (const CallEdge* c = P.calls_begin(q); c != P.calls_end(q); ++c) ambiguous |= P.rule_first[c->rule];
      if (P.node_final[q]) ambiguous |= P.rule_follow[rule];
      const int32_t* row = P.next.data() + static_cast<size_t>(q) * ncls;
      for (uint32_t c = 0; c < ncls; ++c) {
        const int32_t t = row[c];
        uint16_t e;
        if (ambiguous.test(class_rep_[c])) {
          e = RegionKey::kExit;
        } else if (t < 0) {
          e = RegionKey::kDead;
        } else if (frontier) {
          e = RegionKey::kExit;
        } else if (local[t] >= 0) {
          e = static_cast<uint16_t>(local[t]);
        } else if (nodes.size() < kMaxRegionStates) {
          e = static_cast<uint16_t>(nodes.size());
          local[t] = e;
          nodes.push_back(static_cast<uint32_t>(t));
          depth.push_back(static_cast<uint16_t>(std::min<uint32_t>(depth[i] + 1u, 0xFFFF)));
        } else {
          e = RegionKey::kExit;
        }
        grid.push_back(e);
      }
    }
    for (uint32_t q : nodes) local[q] = -1;
  }

  // ---- the region walk ----
  // Local byte classes: grammar classes with identical columns merge, so the
  // key does not depend on how the rest of the grammar splits bytes.
  const size_t L = nodes.size();
  std::vector<uint64_t> col_hash(ncls, 0xcbf29ce484222325ULL);
  for (size_t i = 0; i < L; ++i) {
    const uint16_t* row = grid.data() + i * ncls;
    for (uint32_t c = 0; c < ncls; ++c) col_hash[c] = (col_hash[c] ^ row[c]) * 0x100000001b3ULL;
  }
  std::vector<int32_t> class_local(ncls, -1);
  std::vector<uint32_t> local_rep;  // grammar class of each local class
  RegionKey key;
  for (int byte = 0; byte < 256; ++byte) {
    const uint32_t c = P.byte_class[byte];
    if (class_local[c] < 0) {
      int32_t found = -1;
      for (uint32_t k = 0; k < local_rep.size() && found < 0; ++k) {
        const uint32_t o = local_rep[k];
        if (col_hash[o] != col_hash[c]) continue;
        bool same = true;
        for (size_t i = 0; i < L && same; ++i) same = grid[i * ncls + c] == grid[i * ncls + o];
        if (same) found = static_cast<int32_t>(k);
      }
      if (found < 0) {
        found = static_cast<int32_t>(local_rep.size());
        local_rep.push_back(c);
      }
      class_local[c] = found;
    }
    key.byte_class[byte] = static_cast<uint8_t>(class_local[c]);
  }
  key.num_classes = static_cast<uint32_t>(local_rep.size());
  key.table.resize(L * key.num_classes);
  for (size_t i = 0; i < L; ++i) {
    const uint16_t* row = grid.data() + i * ncls;
    uint16_t* out = key.table.data() + i * key.num_classes;
    for (uint32_t k = 0; k < key.num_classes; ++k) out[k] = row[local_rep[k]];
  }
  key.compute_hash();
  ctx.clear_scratch();
  ctx.set_base_rule(rule);
  std::vector<Handle> flat;
  std::vector<uint32_t> begin(V.max_token_length() + 2, 0);
  std::vector<Handle> next;
  const TokenTrie& trie = V.trie();
  timespec tr0, tr1;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &tr0);
  std::shared_ptr<const RegionWalk> walk = V.region_walk(key);
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &tr1);
  mask.region_us = static_cast<double>(tr1.tv_sec - tr0.tv_sec) * 1e6 + static_cast<double>(tr1.tv_nsec - tr0.tv_nsec) * 1e-3;
  mask.exits = static_cast<uint32_t>(walk->exit_nodes.size());

  // ---- tokens leaving the region: walk their subtrees with the full grammar ----
  for (size_t x = 0; x < walk->exit_nodes.size(); ++x) {
    const uint32_t lo = walk->exit_nodes[x];
    const uint32_t hi = trie.node(lo).end;
    const uint32_t d0 = trie.node(lo).depth - 1u;
    flat.assign(1, Handle{nodes[walk->exit_states[x]], kLocalBase});
    begin[d0] = 0;
    begin[d0 + 1] = 1;
    for (uint32_t i = lo; i < hi;) {
      const TokenTrie::Node& tn = trie.node(i);
      const uint32_t d = tn.depth;
      ++mask.walked_trie_nodes;
      next.clear();
      const Handle h0 = flat[begin[d - 1]];
      if (begin[d] - begin[d - 1] == 1 && !P.has_calls(h0.node) && !P.node_final[h0.node]) {
        // One stack, a plain DFA step.
        const int32_t t = P.step(h0.node, tn.byte);
        if (t >= 0) next.push_back({static_cast<uint32_t>(t), h0.parent});
      } else {
        for (uint32_t k = begin[d - 1]; k < begin[d]; ++k) ctx.step_byte(flat[k], tn.byte, next, false);
      }
      if (next.empty()) {
        i = tn.end;
        continue;
      }
      if (next.size() > kMaxLocalStacks) {
        // Too ambiguous to follow here: leave the whole subtree to the
        // run-time check against the real stacks (always correct).
        for (uint32_t j = i; j < tn.end; ++j) {
          for (const int32_t* t = trie.tokens_begin(j); t != trie.tokens_end(j); ++t) mask.uncertain.push_back(*t);
        }
        i = tn.end;
        continue;
      }
      flat.resize(begin[d]);
      flat.insert(flat.end(), next.begin(), next.end());
      begin[d + 1] = static_cast<uint32_t>(flat.size());
      const int32_t* tb = trie.tokens_begin(i);
      const int32_t* te = trie.tokens_end(i);
      if (tb != te) {
        bool context_free = false;
        for (const Handle& h : next) context_free |= !ctx.escaped(h.parent);
        for (const int32_t* t = tb; t != te; ++t) (context_free ? mask.accepted : mask.uncertain).push_back(*t);
      }
      ++i;
    }
  }
  if (walk->inside.count > 0) mask.region = std::move(walk);
  ctx.clear_scratch();
  std::sort(mask.accepted.begin(), mask.accepted.end());
  // `uncertain` is in trie order, which is byte order: the run-time check
  // shares the prefixes of neighbours.
  mask.uncertain_lcp.resize(mask.uncertain.size(), 0);
  for (size_t k = 1; k < mask.uncertain.size(); ++k) {
    const std::string& a = V.token(mask.uncertain[k - 1]);
    const std::string& b = V.token(mask.uncertain[k]);
    size_t l = 0;
    while (l < a.size() && l < b.size() && a[l] == b[l]) ++l;
    mask.uncertain_lcp[k] = static_cast<uint16_t>(l);
  }
  mask.region_states = static_cast<uint32_t>(nodes.size());
  timespec ts1;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts1);
  mask.compute_us = static_cast<double>(ts1.tv_sec - ts0.tv_sec) * 1e6 + static_cast<double>(ts1.tv_nsec - ts0.tv_nsec) * 1e-3;
  return mask;
}

}  // namespace kr::grammar
