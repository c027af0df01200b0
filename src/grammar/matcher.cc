#include "grammar/matcher.h"

#include <cstring>

namespace kr::grammar {

GrammarMatcher::GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar, MatcherOptions options)
    : grammar_(std::move(grammar)),
      options_(options),
      ctx_(grammar_->pda()),
      mask_ctx_(grammar_->pda()) {
  reset();
}

void GrammarMatcher::reset() {
  ctx_.main().clear();
  ctx_.clear_scratch();
  stacks_.assign(1, Handle{grammar_->pda().root_start, kBottom});
  finished_ = false;
  history_.clear();
  too_ambiguous_ = false;
  cache_valid_ = false;
}

bool GrammarMatcher::can_terminate() const {
  if (finished_) return true;
  for (const Handle& h : stacks_) {
    if (ctx_.can_terminate(h)) return true;
  }
  return false;
}

bool GrammarMatcher::advance_bytes(std::string_view bytes, std::vector<Handle>& out) {
  out = stacks_;
  std::vector<Handle> next;
  for (char c : bytes) {
    next.clear();
    for (const Handle& h : out) ctx_.step_byte(h, static_cast<uint8_t>(c), next, true);
    if (next.empty()) return false;
    if (next.size() > static_cast<size_t>(options_.max_stacks)) {
      too_ambiguous_ = true;  // this token is not allowed
      return false;
    }
    out.swap(next);
  }
  return true;
}

bool GrammarMatcher::accept_bytes(std::string_view bytes) {
  if (finished_) return false;
  const size_t arena = ctx_.main().size();
  std::vector<Handle> out;
  if (!advance_bytes(bytes, out)) {
    ctx_.main().resize(arena);
    return false;
  }
  history_.push_back({std::move(stacks_), arena, finished_});
  if (history_.size() > static_cast<size_t>(options_.max_rollback_tokens)) history_.pop_front();
  stacks_ = std::move(out);
  return true;
}

bool GrammarMatcher::accept_token(int32_t id) {
  const TokenVocabulary& vocab = grammar_->vocab();
  if (finished_ || id < 0 || static_cast<size_t>(id) >= vocab.size()) return false;
  const size_t arena = ctx_.main().size();
  const std::vector<uint32_t> terminals = grammar_->terminals_of(id);
  if (vocab.is_eos(id) && terminals.empty()) {
    if (!can_terminate()) return false;
    history_.push_back({stacks_, arena, finished_});
    if (history_.size() > static_cast<size_t>(options_.max_rollback_tokens)) history_.pop_front();
    finished_ = true;
    return true;
  }
  std::vector<Handle> out;
  for (uint32_t terminal : terminals) {
    for (const Handle& h : stacks_) ctx_.step_token(h, terminal, out, true);
    if (out.size() > static_cast<size_t>(options_.max_stacks)) {
      too_ambiguous_ = true;
      ctx_.main().resize(arena);
      return false;
    }
  }
  if (!vocab.is_special(id) && !vocab.is_eos(id) && !vocab.token(id).empty()) {
    std::vector<Handle> by_bytes;
    if (advance_bytes(vocab.token(id), by_bytes)) {
      for (const Handle& h : by_bytes) ctx_.add_unique(out, h);
    }
  }
  if (out.empty()) {
    ctx_.main().resize(arena);
    return false;
  }
  history_.push_back({std::move(stacks_), arena, finished_});
  if (history_.size() > static_cast<size_t>(options_.max_rollback_tokens)) history_.pop_front();
  stacks_ = std::move(out);
  return true;
}

bool GrammarMatcher::rollback(int k) {
  if (k < 0 || static_cast<size_t>(k) > history_.size()) return false;
  for (int i = 0; i < k; ++i) {
    Snapshot& s = history_.back();
    stacks_ = std::move(s.stacks);
    finished_ = s.finished;
    ctx_.main().resize(s.arena_size);
    history_.pop_back();
  }
  if (k > 0) cache_valid_ = false;
  return true;
}

size_t GrammarMatcher::check_uncertain(Handle h, const NodeMask& nm, uint32_t* bits) {
  const TokenVocabulary& vocab = grammar_->vocab();
  const size_t n = nm.uncertain.size();
  if (n == 0) return 0;
  size_t added = 0;
  if (level_begin_.size() < vocab.max_token_length() + 2) level_begin_.resize(vocab.max_token_length() + 2);
  levels_.assign(1, h);
  level_begin_[0] = 0;
  level_begin_[1] = 1;
  // `matched`: bytes of the previous token consumed; `failed`: it died there.
  size_t matched = 0;
  bool failed = false;
  size_t lcp = 0;
  for (size_t k = 0; k < n; ++k) {
    const int32_t id = nm.uncertain[k];
    const std::string& tok = vocab.token(id);
    if (k > 0) lcp = nm.uncertain_lcp[k];
    if (failed && lcp > matched) continue;  // shares the prefix that already failed
    size_t pos = std::min(lcp, matched);
    failed = false;
    while (pos < tok.size()) {
      step_out_.clear();
      const uint8_t b = static_cast<uint8_t>(tok[pos]);
      for (uint32_t i = level_begin_[pos]; i < level_begin_[pos + 1]; ++i) {
        ctx_.step_byte(levels_[i], b, step_out_, false);
      }
      if (step_out_.empty() || step_out_.size() > static_cast<size_t>(options_.max_stacks)) {
        too_ambiguous_ |= !step_out_.empty();  // as accept_token would: not allowed
        failed = true;
        break;
      }
      levels_.resize(level_begin_[pos + 1]);
      levels_.insert(levels_.end(), step_out_.begin(), step_out_.end());
      ++pos;
      level_begin_[pos + 1] = static_cast<uint32_t>(levels_.size());
    }
    matched = pos;
    if (!failed && !((bits[id >> 5] >> (id & 31)) & 1)) {
      bits[id >> 5] |= 1u << (id & 31);
      ++added;
    }
  }
  return added;
}

size_t GrammarMatcher::fill_mask(uint32_t* bits) {
  const TokenVocabulary& vocab = grammar_->vocab();
  const size_t words = vocab.mask_words();
  if (cache_valid_ && !finished_ && stacks_ == cached_stacks_) {
    std::memcpy(bits, cached_mask_.data(), words * sizeof(uint32_t));
    return cached_count_;
  }
  if (finished_) {
    std::memset(bits, 0, words * sizeof(uint32_t));
    size_t count = 0;
    for (int32_t id : vocab.eos_ids()) {
      bits[id >> 5] |= 1u << (id & 31);
      ++count;
    }
    return count;
  }
  ctx_.clear_scratch();
  bool eos = false;
  const size_t terminals = grammar_->terminal_tokens().size();
  // For one stack the parts are disjoint (region tokens, tokens leaving the
  // region, uncertain ones, EOS and special tokens), so they count themselves.
  size_t count = 0;
  bool first = true;
  for (const Handle& h : stacks_) {
    const NodeMask& nm = grammar_->node_mask(h.node, mask_ctx_);
    if (first) {
      if (nm.region) {
        nm.region->inside.copy_into(bits, words);
      } else {
        std::memset(bits, 0, words * sizeof(uint32_t));
      }
      first = false;
    } else if (nm.region) {
      nm.region->inside.or_into(bits);
    }
    if (nm.region) count += nm.region->inside.count;
    for (int32_t id : nm.accepted) bits[id >> 5] |= 1u << (id & 31);
    count += nm.accepted.size();
    count += check_uncertain(h, nm, bits);
    if (!eos && ctx_.can_terminate(h)) eos = true;
    for (uint32_t t = 0; t < terminals; ++t) {
      step_out_.clear();
      ctx_.step_token(h, t, step_out_, false);
      if (!step_out_.empty()) {
        const int32_t id = grammar_->terminal_tokens()[t];
        count += !((bits[id >> 5] >> (id & 31)) & 1);
        bits[id >> 5] |= 1u << (id & 31);
      }
    }
  }
  if (eos) {
    for (int32_t id : vocab.eos_ids()) {
      count += !((bits[id >> 5] >> (id & 31)) & 1);
      bits[id >> 5] |= 1u << (id & 31);
    }
  }
  ctx_.clear_scratch();
  if (stacks_.size() > 1) {
    count = 0;
    for (size_t w = 0; w < words; ++w) count += static_cast<size_t>(__builtin_popcount(bits[w]));
  }
  cached_stacks_ = stacks_;
  cached_mask_.assign(bits, bits + words);
  cached_count_ = count;
  cache_valid_ = true;
  return count;
}

}  // namespace kr::grammar
