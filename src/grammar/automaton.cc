#include "grammar/automaton.h"

#include <algorithm>
#include <unordered_map>

namespace kr::grammar {

size_t Pda::memory_bytes() const {
  return next.size() * sizeof(int32_t) + calls.size() * sizeof(CallEdge) +
         token_edges.size() * sizeof(TokenEdge) + num_nodes * (sizeof(ByteSet) + 16);
}

namespace {

// ---- byte classes: bytes that no byte set of the grammar tells apart ----
struct ByteClasses {
  uint8_t cls[256] = {};
  uint32_t n = 1;
  uint8_t rep[256] = {};  // one byte of each class
};

ByteClasses compute_byte_classes(const Grammar& g) {
  ByteClasses bc;
  std::unordered_map<uint64_t, std::vector<uint32_t>> seen;  // hash -> byte set indexes
  for (size_t i = 0; i < g.num_exprs(); ++i) {
    const Expr& e = g.expr(static_cast<ExprId>(i));
    if (e.kind != ExprKind::kBytes) continue;
    const ByteSet& s = g.byte_set(e.a);
    auto& bucket = seen[s.hash()];
    bool dup = false;
    for (uint32_t j : bucket) dup |= g.byte_set(j) == s;
    if (dup) continue;
    bucket.push_back(e.a);
    // Refine: (old class, in set) -> new class.
    int16_t remap[256][2];
    for (auto& r : remap) r[0] = r[1] = -1;
    uint32_t n = 0;
    uint8_t next_cls[256];
    for (int b = 0; b < 256; ++b) {
      int in = s.test(static_cast<uint8_t>(b)) ? 1 : 0;
      int16_t& slot = remap[bc.cls[b]][in];
      if (slot < 0) slot = static_cast<int16_t>(n++);
      next_cls[b] = static_cast<uint8_t>(slot);
    }
    std::copy(next_cls, next_cls + 256, bc.cls);
    bc.n = n;
  }
  for (int b = 255; b >= 0; --b) bc.rep[bc.cls[b]] = static_cast<uint8_t>(b);
  return bc;
}

ByteSet class_set_of(const ByteSet& bytes, const ByteClasses& bc) {
  ByteSet out;
  for (uint32_t c = 0; c < bc.n; ++c) {
    if (bytes.test(bc.rep[c])) out.set(static_cast<uint8_t>(c));
  }
  return out;
}

// ---- NFA ----
enum class EdgeKind : uint8_t { kEps, kClasses, kCall, kToken };

struct NfaEdge {
  uint32_t from;
  uint32_t to;
  EdgeKind kind;
  uint32_t arg;  // class set index, rule, or token terminal
};

struct Nfa {
  uint32_t num_states = 0;
  std::vector<NfaEdge> edges;
  std::vector<ByteSet> class_sets;  // sets of class ids
  uint32_t start = 0;
  uint32_t accept = 0;
};

// A DFA over byte classes, calls and token terminals; state 0 is the start.
struct Dfa {
  uint32_t ncls = 0;
  uint32_t num_states = 0;
  std::vector<int32_t> next;  // num_states * ncls, -1 = none
  std::vector<uint8_t> final;
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> calls;   // (rule, target)
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> tokens;  // (terminal, target)

  uint32_t add_state() {
    next.resize(next.size() + ncls, -1);
    final.push_back(0);
    calls.emplace_back();
    tokens.emplace_back();
    return num_states++;
  }
};

struct Budget {
  const PdaLimits& limits;
  uint64_t work = 0;
  uint32_t dfa_states = 0;
  Status charge(uint64_t n) {
    work += n;
    if (work > limits.max_work) {
      return InvalidArgument("grammar is too complex to compile (determinization work limit reached)");
    }
    return Status::Ok();
  }
};

struct VecHash {
  size_t operator()(const std::vector<uint32_t>& v) const {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (uint32_t x : v) h = (h ^ x) * 0x100000001b3ULL;
    return static_cast<size_t>(h ^ (h >> 32));
  }
};

// Subset construction. `rules_allowed`: whether call/token edges may appear.
StatusOr<Dfa> determinize(const Nfa& nfa, uint32_t ncls, Budget& budget) {
  // CSR adjacency.
  std::vector<uint32_t> begin(nfa.num_states + 1, 0);
  for (const NfaEdge& e : nfa.edges) begin[e.from + 1]++;
  for (uint32_t i = 0; i < nfa.num_states; ++i) begin[i + 1] += begin[i];
  std::vector<uint32_t> order(nfa.edges.size());
  {
    std::vector<uint32_t> fill(begin.begin(), begin.end() - 1);
    for (uint32_t i = 0; i < nfa.edges.size(); ++i) order[fill[nfa.edges[i].from]++] = i;
  }
  std::vector<uint8_t> important(nfa.num_states, 0);
  for (const NfaEdge& e : nfa.edges) {
    if (e.kind != EdgeKind::kEps) important[e.from] = 1;
  }
  important[nfa.accept] = 1;

  std::vector<uint32_t> stamp(nfa.num_states, 0);
  uint32_t cur_stamp = 0;
  std::vector<uint32_t> stack;
  auto closure = [&](std::vector<uint32_t>& seeds) -> Status {
    ++cur_stamp;
    std::vector<uint32_t> out;
    stack.clear();
    for (uint32_t s : seeds) {
      if (stamp[s] != cur_stamp) {
        stamp[s] = cur_stamp;
        stack.push_back(s);
      }
    }
    uint64_t steps = 0;
    while (!stack.empty()) {
      uint32_t s = stack.back();
      stack.pop_back();
      if (important[s]) out.push_back(s);
      for (uint32_t k = begin[s]; k < begin[s + 1]; ++k) {
        const NfaEdge& e = nfa.edges[order[k]];
        ++steps;
        if (e.kind == EdgeKind::kEps && stamp[e.to] != cur_stamp) {
          stamp[e.to] = cur_stamp;
          stack.push_back(e.to);
        }
      }
    }
    std::sort(out.begin(), out.end());
    seeds.swap(out);
    return budget.charge(steps + seeds.size());
  };

  Dfa dfa;
  dfa.ncls = ncls;
  std::unordered_map<std::vector<uint32_t>, uint32_t, VecHash> ids;
  std::vector<std::vector<uint32_t>> sets;
  auto intern = [&](std::vector<uint32_t>&& set) -> StatusOr<uint32_t> {
    auto it = ids.find(set);
    if (it != ids.end()) return it->second;
    if (++budget.dfa_states > budget.limits.max_dfa_states) {
      return InvalidArgument("grammar is too large: more than " +
                             std::to_string(budget.limits.max_dfa_states) + " automaton states");
    }
    uint32_t id = dfa.add_state();
    ids.emplace(set, id);
    sets.push_back(std::move(set));
    return id;
  };
  {
    std::vector<uint32_t> s0{nfa.start};
    KR_RETURN_IF_ERROR(closure(s0));
    auto id = intern(std::move(s0));
    if (!id.ok()) return id.status();
  }
  std::vector<std::vector<uint32_t>> buckets(ncls);
  std::vector<uint32_t> touched;
  std::vector<std::pair<uint32_t, uint32_t>> keyed;  // (rule or terminal, nfa target)
  for (uint32_t d = 0; d < dfa.num_states; ++d) {
    const std::vector<uint32_t> members = sets[d];
    bool is_final = false;
    touched.clear();
    std::vector<std::pair<uint32_t, uint32_t>> call_targets, token_targets;
    uint64_t steps = 0;
    for (uint32_t s : members) {
      if (s == nfa.accept) is_final = true;
      for (uint32_t k = begin[s]; k < begin[s + 1]; ++k) {
        const NfaEdge& e = nfa.edges[order[k]];
        ++steps;
        switch (e.kind) {
          case EdgeKind::kEps: break;
          case EdgeKind::kClasses: {
            const ByteSet& cs = nfa.class_sets[e.arg];
            for (uint32_t c = 0; c < ncls; ++c) {
              if (!cs.test(static_cast<uint8_t>(c))) continue;
              if (buckets[c].empty()) touched.push_back(c);
              buckets[c].push_back(e.to);
              ++steps;
            }
            break;
          }
          case EdgeKind::kCall: call_targets.push_back({e.arg, e.to}); break;
          case EdgeKind::kToken: token_targets.push_back({e.arg, e.to}); break;
        }
      }
    }
    KR_RETURN_IF_ERROR(budget.charge(steps + ncls));
    dfa.final[d] = is_final ? 1 : 0;
    // Byte classes with the same target set share one closure.
    std::unordered_map<std::vector<uint32_t>, int32_t, VecHash> by_targets;
    for (uint32_t c : touched) {
      std::vector<uint32_t>& b = buckets[c];
      std::sort(b.begin(), b.end());
      b.erase(std::unique(b.begin(), b.end()), b.end());
      auto it = by_targets.find(b);
      int32_t target;
      if (it != by_targets.end()) {
        target = it->second;
      } else {
        std::vector<uint32_t> set = b;
        KR_RETURN_IF_ERROR(closure(set));
        auto id = intern(std::move(set));
        if (!id.ok()) return id.status();
        target = static_cast<int32_t>(*id);
        by_targets.emplace(b, target);
      }
      dfa.next[static_cast<size_t>(d) * ncls + c] = target;
      b.clear();
    }
    auto group = [&](std::vector<std::pair<uint32_t, uint32_t>>& targets,
                     std::vector<std::pair<uint32_t, uint32_t>>& out) -> Status {
      std::sort(targets.begin(), targets.end());
      for (size_t i = 0; i < targets.size();) {
        size_t j = i;
        std::vector<uint32_t> set;
        while (j < targets.size() && targets[j].first == targets[i].first) set.push_back(targets[j++].second);
        KR_RETURN_IF_ERROR(closure(set));
        auto id = intern(std::move(set));
        if (!id.ok()) return id.status();
        out.push_back({targets[i].first, *id});
        i = j;
      }
      return Status::Ok();
    };
    std::vector<std::pair<uint32_t, uint32_t>> calls_out, tokens_out;
    KR_RETURN_IF_ERROR(group(call_targets, calls_out));
    KR_RETURN_IF_ERROR(group(token_targets, tokens_out));
    dfa.calls[d] = std::move(calls_out);
    dfa.tokens[d] = std::move(tokens_out);
  }
  return dfa;
}

class NfaBuilder {
 public:
  NfaBuilder(const Grammar& g, const ByteClasses& bc, const std::vector<uint8_t>& nullable, Budget& budget)
      : g_(g), bc_(bc), nullable_(nullable), budget_(budget) {}

  // Builds the NFA of `body` into a fresh Nfa.
  StatusOr<Nfa> build_rule(ExprId body) {
    nfa_ = Nfa();
    class_index_.clear();
    nfa_.start = new_state();
    nfa_.accept = new_state();
    KR_RETURN_IF_ERROR(build(body, nfa_.start, nfa_.accept, 0));
    if (nfa_.num_states > budget_.limits.max_nfa_states) return too_large();
    return std::move(nfa_);
  }

 private:
  Status too_large() const {
    return InvalidArgument("grammar is too large: more than " + std::to_string(budget_.limits.max_nfa_states) +
                           " automaton states after expanding repetitions");
  }
  uint32_t new_state() { return nfa_.num_states++; }
  void edge(uint32_t from, uint32_t to, EdgeKind kind, uint32_t arg = 0) {
    nfa_.edges.push_back({from, to, kind, arg});
  }
  uint32_t class_set_index(const ByteSet& classes) {
    uint64_t h = classes.hash();
    auto& bucket = class_index_[h];
    for (uint32_t i : bucket) {
      if (nfa_.class_sets[i] == classes) return i;
    }
    nfa_.class_sets.push_back(classes);
    bucket.push_back(static_cast<uint32_t>(nfa_.class_sets.size() - 1));
    return bucket.back();
  }

  Status build(ExprId id, uint32_t in, uint32_t out, uint32_t depth) {
    if (depth > budget_.limits.max_expr_depth) {
      return InvalidArgument("grammar nests too deeply (more than " + std::to_string(budget_.limits.max_expr_depth) +
                             " levels)");
    }
    if (nfa_.num_states > budget_.limits.max_nfa_states) return too_large();
    const Expr& e = g_.expr(id);
    switch (e.kind) {
      case ExprKind::kNothing: return Status::Ok();
      case ExprKind::kEmpty: edge(in, out, EdgeKind::kEps); return Status::Ok();
      case ExprKind::kBytes:
        edge(in, out, EdgeKind::kClasses, class_set_index(class_set_of(g_.byte_set(e.a), bc_)));
        return Status::Ok();
      case ExprKind::kSeq: {
        const ExprId* ch = g_.children(e);
        uint32_t cur = in;
        for (uint32_t i = 0; i < e.b; ++i) {
          uint32_t nxt = i + 1 == e.b ? out : new_state();
          KR_RETURN_IF_ERROR(build(ch[i], cur, nxt, depth + 1));
          cur = nxt;
        }
        return Status::Ok();
      }
      case ExprKind::kAlt: {
        const ExprId* ch = g_.children(e);
        for (uint32_t i = 0; i < e.b; ++i) {
          // Fresh entry/exit per alternative keeps loops inside one branch.
          uint32_t a = new_state(), b = new_state();
          edge(in, a, EdgeKind::kEps);
          edge(b, out, EdgeKind::kEps);
          KR_RETURN_IF_ERROR(build(ch[i], a, b, depth + 1));
        }
        return Status::Ok();
      }
      case ExprKind::kRepeat: {
        uint32_t cur = in;
        for (uint32_t i = 0; i < e.min; ++i) {
          uint32_t nxt = new_state();
          KR_RETURN_IF_ERROR(build(e.a, cur, nxt, depth + 1));
          cur = nxt;
          if (nfa_.num_states > budget_.limits.max_nfa_states) return too_large();
        }
        if (e.max == kUnbounded) {
          uint32_t loop = new_state(), body_end = new_state();
          edge(cur, loop, EdgeKind::kEps);
          KR_RETURN_IF_ERROR(build(e.a, loop, body_end, depth + 1));
          edge(body_end, loop, EdgeKind::kEps);
          edge(loop, out, EdgeKind::kEps);
        } else {
          edge(cur, out, EdgeKind::kEps);
          for (uint32_t i = e.min; i < e.max; ++i) {
            uint32_t nxt = new_state();
            KR_RETURN_IF_ERROR(build(e.a, cur, nxt, depth + 1));
            edge(nxt, out, EdgeKind::kEps);
            cur = nxt;
            if (nfa_.num_states > budget_.limits.max_nfa_states) return too_large();
          }
        }
        return Status::Ok();
      }
      case ExprKind::kRuleRef:
        edge(in, out, EdgeKind::kCall, e.a);
        if (nullable_[e.a]) edge(in, out, EdgeKind::kEps);
        return Status::Ok();
      case ExprKind::kToken: edge(in, out, EdgeKind::kToken, e.a); return Status::Ok();
      case ExprKind::kAnd:
      case ExprKind::kMinus: return build_product(e, in, out, depth);
      case ExprKind::kList: return build_list(e, in, out, depth);
    }
    return Internal("unknown expression kind");
  }

  // kList in O(items): S_i = nothing written yet before item i, T_i = something
  // written. Each item is built twice (first, or after a separator).
  Status build_list(const Expr& e, uint32_t in, uint32_t out, uint32_t depth) {
    const ExprId* ch = g_.children(e);
    const ExprId sep = ch[e.b], extra = ch[e.b + 1];
    uint32_t s = in;
    uint32_t t = kNoState;
    auto sep_then = [&](ExprId item, uint32_t from, uint32_t to) -> Status {
      uint32_t mid = new_state();
      KR_RETURN_IF_ERROR(build(sep, from, mid, depth + 1));
      return build(item, mid, to, depth + 1);
    };
    for (uint32_t i = 0; i < e.b; ++i) {
      const bool req = g_.list_required(e, i);
      uint32_t s2 = req ? kNoState : new_state();
      uint32_t t2 = new_state();
      if (s != kNoState) {
        KR_RETURN_IF_ERROR(build(ch[i], s, t2, depth + 1));
        if (!req) edge(s, s2, EdgeKind::kEps);
      }
      if (t != kNoState) {
        KR_RETURN_IF_ERROR(sep_then(ch[i], t, t2));
        if (!req) edge(t, t2, EdgeKind::kEps);
      }
      s = s2;
      t = t2;
      if (nfa_.num_states > budget_.limits.max_nfa_states) return too_large();
    }
    if (g_.expr(extra).kind != ExprKind::kNothing) {
      uint32_t x = new_state();
      if (s != kNoState) KR_RETURN_IF_ERROR(build(extra, s, x, depth + 1));
      if (t != kNoState) KR_RETURN_IF_ERROR(sep_then(extra, t, x));
      KR_RETURN_IF_ERROR(sep_then(extra, x, x));
      edge(x, out, EdgeKind::kEps);
    }
    if (t != kNoState) edge(t, out, EdgeKind::kEps);
    return Status::Ok();
  }
  static constexpr uint32_t kNoState = 0xFFFFFFFFu;

  // Regular intersection / difference: determinize both sides on their own,
  // then splice the product automaton in.
  Status build_product(const Expr& e, uint32_t in, uint32_t out, uint32_t depth) {
    KR_RETURN_IF_ERROR(check_regular(e.a, depth));
    KR_RETURN_IF_ERROR(check_regular(e.b, depth));
    Nfa saved = std::move(nfa_);
    auto saved_index = std::move(class_index_);
    class_index_.clear();
    auto sub = [&](ExprId x) -> StatusOr<Dfa> {
      nfa_ = Nfa();
      class_index_.clear();
      nfa_.start = new_state();
      nfa_.accept = new_state();
      Status st = build(x, nfa_.start, nfa_.accept, depth + 1);
      if (!st.ok()) return st;
      return determinize(nfa_, bc_.n, budget_);
    };
    auto da = sub(e.a);
    auto db = da.ok() ? sub(e.b) : StatusOr<Dfa>(da.status());
    nfa_ = std::move(saved);
    class_index_ = std::move(saved_index);
    if (!da.ok()) return da.status();
    if (!db.ok()) return db.status();
    const Dfa& A = *da;
    const Dfa& B = *db;
    const bool is_and = e.kind == ExprKind::kAnd;
    const uint32_t ncls = bc_.n;
    // Product states (a, b); b == -1 is B's dead state (only for difference).
    std::unordered_map<uint64_t, uint32_t> ids;
    std::vector<std::pair<int32_t, int32_t>> states;
    auto key = [](int32_t a, int32_t b) {
      return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
    };
    auto get = [&](int32_t a, int32_t b) -> uint32_t {
      auto it = ids.find(key(a, b));
      if (it != ids.end()) return it->second;
      uint32_t s = new_state();
      ids.emplace(key(a, b), s);
      states.push_back({a, b});
      return s;
    };
    edge(in, get(0, 0), EdgeKind::kEps);
    for (size_t i = 0; i < states.size(); ++i) {
      KR_RETURN_IF_ERROR(budget_.charge(ncls));
      if (nfa_.num_states > budget_.limits.max_nfa_states) return too_large();
      auto [a, b] = states[i];
      uint32_t from = ids[key(a, b)];
      bool fa = A.final[a] != 0;
      bool fb = b >= 0 && B.final[b] != 0;
      if (is_and ? (fa && fb) : (fa && !fb)) edge(from, out, EdgeKind::kEps);
      std::unordered_map<uint32_t, ByteSet> by_target;
      for (uint32_t c = 0; c < ncls; ++c) {
        int32_t a2 = A.next[static_cast<size_t>(a) * ncls + c];
        if (a2 < 0) continue;
        int32_t b2 = b < 0 ? -1 : B.next[static_cast<size_t>(b) * ncls + c];
        if (is_and && b2 < 0) continue;
        uint32_t to = get(a2, b2);
        by_target[to].set(static_cast<uint8_t>(c));
      }
      for (auto& [to, cs] : by_target) edge(from, to, EdgeKind::kClasses, class_set_index(cs));
    }
    return Status::Ok();
  }

  Status check_regular(ExprId id, uint32_t depth) {
    if (depth > budget_.limits.max_expr_depth) return InvalidArgument("grammar nests too deeply");
    const Expr& e = g_.expr(id);
    switch (e.kind) {
      case ExprKind::kRuleRef:
      case ExprKind::kToken:
        return InvalidArgument("internal: intersection of non-regular expressions is not supported");
      case ExprKind::kSeq:
      case ExprKind::kAlt:
        for (uint32_t i = 0; i < e.b; ++i) KR_RETURN_IF_ERROR(check_regular(g_.children(e)[i], depth + 1));
        return Status::Ok();
      case ExprKind::kRepeat: return check_regular(e.a, depth + 1);
      case ExprKind::kList:
        for (uint32_t i = 0; i < e.b + 2; ++i) KR_RETURN_IF_ERROR(check_regular(g_.children(e)[i], depth + 1));
        return Status::Ok();
      case ExprKind::kAnd:
      case ExprKind::kMinus:
        KR_RETURN_IF_ERROR(check_regular(e.a, depth + 1));
        return check_regular(e.b, depth + 1);
      default: return Status::Ok();
    }
  }

  const Grammar& g_;
  const ByteClasses& bc_;
  const std::vector<uint8_t>& nullable_;
  Budget& budget_;
  Nfa nfa_;
  std::unordered_map<uint64_t, std::vector<uint32_t>> class_index_;
};

// Nullable rules: least fixpoint over the expression DAG.
std::vector<uint8_t> compute_nullable(const Grammar& g) {
  const size_t nr = g.rules().size();
  std::vector<uint8_t> rule_nullable(nr, 0);
  std::vector<int8_t> memo;
  bool changed = true;
  while (changed) {
    changed = false;
    memo.assign(g.num_exprs(), -1);
    // Iterative post-order over the DAG would avoid recursion; expressions are
    // depth-limited by the front ends, so recursion is bounded.
    auto eval = [&](auto&& self, ExprId id, uint32_t depth) -> bool {
      if (memo[id] >= 0) return memo[id] != 0;
      const Expr& e = g.expr(id);
      bool r = false;
      if (depth > 4000) return false;
      switch (e.kind) {
        case ExprKind::kNothing: r = false; break;
        case ExprKind::kEmpty: r = true; break;
        case ExprKind::kBytes: r = false; break;
        case ExprKind::kToken: r = false; break;
        case ExprKind::kSeq:
          r = true;
          for (uint32_t i = 0; i < e.b && r; ++i) r = self(self, g.children(e)[i], depth + 1);
          break;
        case ExprKind::kAlt:
          for (uint32_t i = 0; i < e.b && !r; ++i) r = self(self, g.children(e)[i], depth + 1);
          break;
        case ExprKind::kRepeat: r = e.min == 0 || self(self, e.a, depth + 1); break;
        case ExprKind::kRuleRef: r = rule_nullable[e.a] != 0; break;
        case ExprKind::kAnd: r = self(self, e.a, depth + 1) && self(self, e.b, depth + 1); break;
        case ExprKind::kMinus: r = self(self, e.a, depth + 1) && !self(self, e.b, depth + 1); break;
        case ExprKind::kList: {
          // Nullable only if some present item can be empty; conservative
          // answer: evaluate "first item alone" paths.
          const ExprId* ch = g.children(e);
          bool all_before_optional = true;
          for (uint32_t i = 0; i < e.b && !r; ++i) {
            if (all_before_optional && self(self, ch[i], depth + 1)) {
              // item i alone, later items absent: needs the rest optional
              bool rest_optional = true;
              for (uint32_t k = i + 1; k < e.b; ++k) rest_optional &= !g.list_required(e, k);
              r = rest_optional;
            }
            all_before_optional &= !g.list_required(e, i);
          }
          if (!r && all_before_optional && self(self, ch[e.b + 1], depth + 1)) r = true;
          break;
        }
      }
      memo[id] = r ? 1 : 0;
      return r;
    };
    for (size_t r = 0; r < nr; ++r) {
      if (rule_nullable[r]) continue;
      if (eval(eval, g.rules()[r].body, 0)) {
        rule_nullable[r] = 1;
        changed = true;
      }
    }
  }
  return rule_nullable;
}

// Rules referenced (transitively) from the root, in discovery order.
std::vector<uint32_t> reachable_rules_ir(const Grammar& g) {
  std::vector<uint8_t> seen_rule(g.rules().size(), 0);
  std::vector<uint8_t> seen_expr(g.num_exprs(), 0);
  std::vector<uint32_t> order{g.root()};
  seen_rule[g.root()] = 1;
  for (size_t i = 0; i < order.size(); ++i) {
    std::vector<ExprId> stack{g.rules()[order[i]].body};
    while (!stack.empty()) {
      ExprId id = stack.back();
      stack.pop_back();
      if (seen_expr[id]) continue;
      seen_expr[id] = 1;
      const Expr& e = g.expr(id);
      switch (e.kind) {
        case ExprKind::kSeq:
        case ExprKind::kAlt:
          for (uint32_t k = 0; k < e.b; ++k) stack.push_back(g.children(e)[k]);
          break;
        case ExprKind::kRepeat: stack.push_back(e.a); break;
        case ExprKind::kList:
          for (uint32_t k = 0; k < e.b + 2; ++k) stack.push_back(g.children(e)[k]);
          break;
        case ExprKind::kAnd:
        case ExprKind::kMinus:
          stack.push_back(e.a);
          stack.push_back(e.b);
          break;
        case ExprKind::kRuleRef:
          if (!seen_rule[e.a]) {
            seen_rule[e.a] = 1;
            order.push_back(e.a);
          }
          break;
        default: break;
      }
    }
  }
  return order;
}

struct RuleAutomaton {
  Dfa dfa;
  uint32_t entry = 0;  // non-final entry (== 0 unless the start is final)
  bool callable = false;
};

}  // namespace

StatusOr<std::shared_ptr<const Pda>> build_pda(const Grammar& g, const PdaLimits& limits) {
  KR_RETURN_IF_ERROR(g.validate());
  const ByteClasses bc = compute_byte_classes(g);
  const std::vector<uint8_t> nullable = compute_nullable(g);
  const std::vector<uint32_t> ir_rules = reachable_rules_ir(g);
  const size_t nr = g.rules().size();

  Budget budget{limits};
  NfaBuilder nb(g, bc, nullable, budget);
  std::vector<RuleAutomaton> ra(nr);
  std::vector<uint8_t> built(nr, 0);
  for (uint32_t r : ir_rules) {
    auto nfa = nb.build_rule(g.rules()[r].body);
    if (!nfa.ok()) return nfa.status();
    auto dfa = determinize(*nfa, bc.n, budget);
    if (!dfa.ok()) return dfa.status();
    RuleAutomaton& a = ra[r];
    a.dfa = std::move(*dfa);
    built[r] = 1;
    if (a.dfa.final[0]) {
      // Non-final copy of the start: the entry used by calls.
      uint32_t e = a.dfa.add_state();
      for (uint32_t c = 0; c < bc.n; ++c) a.dfa.next[e * bc.n + c] = a.dfa.next[c];
      a.dfa.calls[e] = a.dfa.calls[0];
      a.dfa.tokens[e] = a.dfa.tokens[0];
      a.entry = e;
    }
  }

  // Callable rules (least fixpoint): a final state is reachable from the entry.
  auto reaches_final = [&](uint32_t r, uint32_t from) {
    const Dfa& d = ra[r].dfa;
    std::vector<uint8_t> seen(d.num_states, 0);
    std::vector<uint32_t> stack{from};
    seen[from] = 1;
    while (!stack.empty()) {
      uint32_t s = stack.back();
      stack.pop_back();
      if (d.final[s]) return true;
      auto push = [&](int32_t t) {
        if (t >= 0 && !seen[t]) {
          seen[t] = 1;
          stack.push_back(static_cast<uint32_t>(t));
        }
      };
      for (uint32_t c = 0; c < d.ncls; ++c) push(d.next[static_cast<size_t>(s) * d.ncls + c]);
      for (auto [rule, t] : d.calls[s]) {
        if (ra[rule].callable) push(static_cast<int32_t>(t));
      }
      for (auto [tok, t] : d.tokens[s]) push(static_cast<int32_t>(t));
    }
    return false;
  };
  for (bool changed = true; changed;) {
    changed = false;
    for (uint32_t r : ir_rules) {
      if (!ra[r].callable && reaches_final(r, ra[r].entry)) {
        ra[r].callable = true;
        changed = true;
      }
    }
  }
  const uint32_t root = g.root();
  if (!ra[root].dfa.final[0] && !ra[root].callable) {
    return InvalidArgument("the grammar accepts no output at all");
  }

  // Trim: drop calls of non-callable rules, states that cannot reach a final
  // state, and states not reachable from the start (root) or the entry.
  for (uint32_t r : ir_rules) {
    Dfa& d = ra[r].dfa;
    const uint32_t n = d.num_states, ncls = d.ncls;
    for (auto& cl : d.calls) {
      cl.erase(std::remove_if(cl.begin(), cl.end(), [&](auto& p) { return !ra[p.first].callable; }), cl.end());
    }
    std::vector<std::vector<uint32_t>> rev(n);
    for (uint32_t s = 0; s < n; ++s) {
      for (uint32_t c = 0; c < ncls; ++c) {
        int32_t t = d.next[static_cast<size_t>(s) * ncls + c];
        if (t >= 0) rev[t].push_back(s);
      }
      for (auto [x, t] : d.calls[s]) rev[t].push_back(s);
      for (auto [x, t] : d.tokens[s]) rev[t].push_back(s);
    }
    std::vector<uint8_t> co(n, 0);
    std::vector<uint32_t> stack;
    for (uint32_t s = 0; s < n; ++s) {
      if (d.final[s]) {
        co[s] = 1;
        stack.push_back(s);
      }
    }
    while (!stack.empty()) {
      uint32_t s = stack.back();
      stack.pop_back();
      for (uint32_t p : rev[s]) {
        if (!co[p]) {
          co[p] = 1;
          stack.push_back(p);
        }
      }
    }
    std::vector<uint8_t> fw(n, 0);
    auto mark = [&](uint32_t s) {
      if (co[s] && !fw[s]) {
        fw[s] = 1;
        stack.push_back(s);
      }
    };
    if (r == root) mark(0);
    mark(ra[r].entry);
    while (!stack.empty()) {
      uint32_t s = stack.back();
      stack.pop_back();
      for (uint32_t c = 0; c < ncls; ++c) {
        int32_t t = d.next[static_cast<size_t>(s) * ncls + c];
        if (t >= 0) mark(static_cast<uint32_t>(t));
      }
      for (auto [x, t] : d.calls[s]) mark(t);
      for (auto [x, t] : d.tokens[s]) mark(t);
    }
    // Renumber kept states; the start stays 0 when kept.
    std::vector<int32_t> remap(n, -1);
    Dfa out;
    out.ncls = ncls;
    std::vector<uint32_t> keep;
    if (fw[0]) keep.push_back(0);
    for (uint32_t s = 1; s < n; ++s) {
      if (fw[s]) keep.push_back(s);
    }
    for (uint32_t s : keep) remap[s] = static_cast<int32_t>(out.add_state());
    for (uint32_t s : keep) {
      uint32_t ns = static_cast<uint32_t>(remap[s]);
      out.final[ns] = d.final[s];
      for (uint32_t c = 0; c < ncls; ++c) {
        int32_t t = d.next[static_cast<size_t>(s) * ncls + c];
        out.next[static_cast<size_t>(ns) * ncls + c] = t >= 0 ? remap[t] : -1;
      }
      for (auto [x, t] : d.calls[s]) {
        if (remap[t] >= 0) out.calls[ns].push_back({x, static_cast<uint32_t>(remap[t])});
      }
      for (auto [x, t] : d.tokens[s]) {
        if (remap[t] >= 0) out.tokens[ns].push_back({x, static_cast<uint32_t>(remap[t])});
      }
    }
    ra[r].entry = ra[r].callable ? static_cast<uint32_t>(remap[ra[r].entry]) : 0;
    d = std::move(out);
  }

  // Rules reachable from the root through the remaining calls.
  std::vector<int32_t> rule_index(nr, -1);
  std::vector<uint32_t> rules{root};
  rule_index[root] = 0;
  for (size_t i = 0; i < rules.size(); ++i) {
    const Dfa& d = ra[rules[i]].dfa;
    for (const auto& cl : d.calls) {
      for (auto [callee, t] : cl) {
        if (rule_index[callee] < 0) {
          rule_index[callee] = static_cast<int32_t>(rules.size());
          rules.push_back(callee);
        }
      }
    }
  }

  // Left recursion: a rule that can call itself before consuming anything.
  {
    std::vector<uint8_t> color(nr, 0);  // 0 new, 1 on stack, 2 done
    std::vector<uint32_t> path;
    std::string cycle;
    auto dfs = [&](auto&& self, uint32_t r) -> bool {
      color[r] = 1;
      path.push_back(r);
      for (auto [callee, t] : ra[r].dfa.calls[ra[r].entry]) {
        if (color[callee] == 1) {
          auto it = std::find(path.begin(), path.end(), callee);
          for (; it != path.end(); ++it) cycle += "'" + g.rules()[*it].name + "' -> ";
          cycle += "'" + g.rules()[callee].name + "'";
          return true;
        }
        if (color[callee] == 0 && self(self, callee)) return true;
      }
      path.pop_back();
      color[r] = 2;
      return false;
    };
    for (uint32_t r : rules) {
      if (color[r] == 0 && dfs(dfs, r)) {
        return InvalidArgument("left recursion is not supported: " + cycle + " without consuming input");
      }
    }
  }

  // ---- assemble the global tables ----
  auto pda = std::make_shared<Pda>();
  const uint32_t ncls = bc.n;
  pda->num_classes = ncls;
  std::copy(bc.cls, bc.cls + 256, pda->byte_class);
  std::vector<uint32_t> base(nr, 0);
  uint32_t total = 0;
  for (uint32_t r : rules) {
    base[r] = total;
    total += ra[r].dfa.num_states;
  }
  pda->num_nodes = total;
  pda->node_rule.resize(total);
  pda->node_final.resize(total);
  pda->node_bytes.resize(total);
  pda->next.assign(static_cast<size_t>(total) * ncls, Pda::kNone);
  pda->call_begin.assign(total + 1, 0);
  pda->token_begin.assign(total + 1, 0);
  const uint32_t nrules = static_cast<uint32_t>(rules.size());
  pda->rule_names.resize(nrules);
  pda->rule_entry.resize(nrules);
  pda->rule_first.resize(nrules);
  pda->rule_first_tokens.resize(nrules);
  pda->rule_follow.resize(nrules);
  pda->rule_returns.resize(nrules);
  pda->rule_called.assign(nrules, 0);
  for (uint32_t i = 0; i < g.num_token_terminals(); ++i) pda->token_terminals.push_back(g.token_terminal(i));
  for (uint32_t ri = 0; ri < nrules; ++ri) {
    uint32_t r = rules[ri];
    const Dfa& d = ra[r].dfa;
    pda->rule_names[ri] = g.rules()[r].name;
    pda->rule_entry[ri] = base[r] + ra[r].entry;
    for (uint32_t s = 0; s < d.num_states; ++s) {
      uint32_t node = base[r] + s;
      pda->node_rule[node] = ri;
      pda->node_final[node] = d.final[s];
      for (uint32_t c = 0; c < ncls; ++c) {
        int32_t t = d.next[static_cast<size_t>(s) * ncls + c];
        if (t >= 0) pda->next[static_cast<size_t>(node) * ncls + c] = static_cast<int32_t>(base[r] + t);
      }
      for (auto [callee, t] : d.calls[s]) {
        pda->calls.push_back({static_cast<uint32_t>(rule_index[callee]), base[r] + t});
        pda->rule_called[rule_index[callee]] = 1;
        pda->rule_returns[rule_index[callee]].push_back(base[r] + t);
      }
      pda->call_begin[node + 1] = static_cast<uint32_t>(pda->calls.size());
      for (auto [tok, t] : d.tokens[s]) pda->token_edges.push_back({tok, base[r] + t});
      pda->token_begin[node + 1] = static_cast<uint32_t>(pda->token_edges.size());
    }
  }
  for (uint32_t n = 0; n < total; ++n) {
    ByteSet s;
    for (int b = 0; b < 256; ++b) {
      if (pda->step(n, static_cast<uint8_t>(b)) >= 0) s.set(static_cast<uint8_t>(b));
    }
    pda->node_bytes[n] = s;
  }
  pda->root_rule = 0;
  pda->root_start = base[root];  // state 0 of the root
  for (auto& v : pda->rule_returns) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  }

  // FIRST of each rule (from its entry): the left-corner graph is acyclic.
  {
    std::vector<uint8_t> done(nrules, 0);
    auto first = [&](auto&& self, uint32_t ri) -> void {
      if (done[ri]) return;
      done[ri] = 1;
      uint32_t e = pda->rule_entry[ri];
      ByteSet s = pda->node_bytes[e];
      std::vector<uint32_t> toks;
      for (uint32_t k = pda->token_begin[e]; k < pda->token_begin[e + 1]; ++k) toks.push_back(pda->token_edges[k].terminal);
      for (const CallEdge* c = pda->calls_begin(e); c != pda->calls_end(e); ++c) {
        self(self, c->rule);
        s |= pda->rule_first[c->rule];
        toks.insert(toks.end(), pda->rule_first_tokens[c->rule].begin(), pda->rule_first_tokens[c->rule].end());
      }
      std::sort(toks.begin(), toks.end());
      toks.erase(std::unique(toks.begin(), toks.end()), toks.end());
      pda->rule_first[ri] = s;
      pda->rule_first_tokens[ri] = std::move(toks);
    };
    for (uint32_t ri = 0; ri < nrules; ++ri) first(first, ri);
  }
  // FOLLOW (one byte) of each rule, over all calling contexts: fixpoint.
  for (bool changed = true; changed;) {
    changed = false;
    for (uint32_t ri = 0; ri < nrules; ++ri) {
      ByteSet f = pda->rule_follow[ri];
      for (uint32_t ret : pda->rule_returns[ri]) {
        f |= pda->node_bytes[ret];
        for (const CallEdge* c = pda->calls_begin(ret); c != pda->calls_end(ret); ++c) f |= pda->rule_first[c->rule];
        if (pda->node_final[ret]) f |= pda->rule_follow[pda->node_rule[ret]];
      }
      if (!(f == pda->rule_follow[ri])) {
        pda->rule_follow[ri] = f;
        changed = true;
      }
    }
  }
  return std::shared_ptr<const Pda>(std::move(pda));
}

}  // namespace kr::grammar
