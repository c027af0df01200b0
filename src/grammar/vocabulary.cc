#include "grammar/vocabulary.h"

#include <algorithm>
#include <cstring>

namespace kr::grammar {

void RegionKey::compute_hash() {
  // 64 bits at a time (the table dominates); the tail and header mixed in.
  auto mix = [](uint64_t h, uint64_t x) {
    h ^= x * 0x9e3779b97f4a7c15ULL;
    h = (h << 27) | (h >> 37);
    return h * 0x94d049bb133111ebULL;
  };
  uint64_t h = mix(0x243f6a8885a308d3ULL, num_classes);
  for (size_t i = 0; i < 256; i += 8) {
    uint64_t x;
    std::memcpy(&x, byte_class + i, 8);
    h = mix(h, x);
  }
  const size_t n = table.size();
  const uint16_t* t = table.data();
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint64_t x;
    std::memcpy(&x, t + i, 8);
    h = mix(h, x);
  }
  for (; i < n; ++i) h = mix(h, t[i]);
  hash = mix(h, n);
}

bool RegionKey::operator==(const RegionKey& o) const {
  return hash == o.hash && num_classes == o.num_classes && std::memcmp(byte_class, o.byte_class, 256) == 0 &&
         table == o.table;
}

size_t RegionWalk::memory_bytes() const {
  return inside.memory_bytes() + exit_nodes.size() * 4 + exit_states.size() * 2 + sizeof(RegionWalk);
}

StatusOr<std::shared_ptr<const TokenVocabulary>> TokenVocabulary::create(std::vector<std::string> token_bytes,
                                                                         std::vector<int32_t> eos_ids,
                                                                         std::vector<int32_t> special_ids) {
  if (token_bytes.empty()) return InvalidArgument("vocabulary is empty");
  if (token_bytes.size() > (size_t{1} << 30)) return InvalidArgument("vocabulary is too large");
  std::shared_ptr<TokenVocabulary> v(new TokenVocabulary());
  const size_t n = token_bytes.size();
  v->kind_.assign(n, kNormal);
  for (size_t i = 0; i < n; ++i) {
    if (token_bytes[i].empty()) v->kind_[i] = kEmpty;
    if (token_bytes[i].size() > 0xFFFF) return InvalidArgument("token " + std::to_string(i) + " is too long");
  }
  for (int32_t id : special_ids) {
    if (id < 0 || static_cast<size_t>(id) >= n) return InvalidArgument("special token id out of range");
    v->kind_[id] = kSpecial;
  }
  for (int32_t id : eos_ids) {
    if (id < 0 || static_cast<size_t>(id) >= n) return InvalidArgument("EOS token id out of range");
    v->kind_[id] = kEos;
  }
  std::sort(eos_ids.begin(), eos_ids.end());
  eos_ids.erase(std::unique(eos_ids.begin(), eos_ids.end()), eos_ids.end());
  v->eos_ids_ = std::move(eos_ids);
  v->special_ids_ = std::move(special_ids);
  v->tokens_ = std::move(token_bytes);


  // The trie over the tokens matched as bytes.
  std::vector<int32_t> order;
  for (size_t i = 0; i < n; ++i) {
    if (v->kind_[i] == kNormal) order.push_back(static_cast<int32_t>(i));
  }
  const auto& toks = v->tokens_;
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return toks[a] < toks[b] || (toks[a] == toks[b] && a < b);
  });
  v->trie_.build(toks, order);
  v->max_len_ = v->trie_.max_depth();
  return std::shared_ptr<const TokenVocabulary>(std::move(v));
}

void TokenTrie::build(const std::vector<std::string>& toks, const std::vector<int32_t>& ids) {
  nodes_.assign(1, Node{0, -1, 0, 0, 0});
  std::vector<uint32_t> path{0};  // node at each depth of the current token
  std::vector<uint32_t> tok_node;  // node of each id
  const std::string* prev = nullptr;
  for (int32_t id : ids) {
    const std::string& t = toks[id];
    size_t lcp = 0;
    if (prev) {
      while (lcp < t.size() && lcp < prev->size() && t[lcp] == (*prev)[lcp]) ++lcp;
    }
    while (path.size() > lcp + 1) {
      nodes_[path.back()].end = static_cast<uint32_t>(nodes_.size());
      path.pop_back();
    }
    for (size_t d = lcp; d < t.size(); ++d) {
      nodes_.push_back({0, -1, static_cast<uint16_t>(d + 1), static_cast<uint8_t>(t[d]), 0});
      path.push_back(static_cast<uint32_t>(nodes_.size() - 1));
    }
    tok_node.push_back(path.back());
    max_depth_ = std::max<uint32_t>(max_depth_, static_cast<uint32_t>(t.size()));
    prev = &t;
  }
  while (!path.empty()) {
    nodes_[path.back()].end = static_cast<uint32_t>(nodes_.size());
    path.pop_back();
  }
  const uint32_t count = static_cast<uint32_t>(nodes_.size());
  tok_begin_.assign(count + 1, 0);
  for (uint32_t node : tok_node) tok_begin_[node + 1]++;
  for (uint32_t i = 0; i < count; ++i) tok_begin_[i + 1] += tok_begin_[i];
  tokens_.resize(ids.size());
  std::vector<uint32_t> fill(tok_begin_.begin(), tok_begin_.end() - 1);
  for (size_t k = 0; k < ids.size(); ++k) tokens_[fill[tok_node[k]]++] = ids[k];
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t n_tok = tok_begin_[i + 1] - tok_begin_[i];
    if (n_tok > 0) nodes_[i].token = tokens_[tok_begin_[i]];
    nodes_[i].more = n_tok > 1 ? 1 : 0;
  }
}

int32_t TokenVocabulary::find_special(std::string_view text) const {
  for (int32_t id : special_ids_) {
    if (tokens_[id] == text) return id;
  }
  for (int32_t id : eos_ids_) {
    if (tokens_[id] == text) return id;
  }
  return -1;
}

RegionWalk TokenVocabulary::walk(const RegionKey& key) const {
  RegionWalk out;
  const TokenTrie& trie = trie_;
  const size_t words = mask_words();
  std::vector<uint32_t> inside(words, 0);
  size_t count = 0;
  const uint32_t ncls = key.num_classes;
  const uint16_t* table = key.table.data();
  const uint8_t* cls = key.byte_class;
  std::vector<uint16_t> state(trie.max_depth() + 2, 0);  // local state after depth d
  const uint32_t n = trie.size();
  const TokenTrie::Node* nodes = trie.nodes();
  uint16_t* st = state.data();
  uint32_t* in = inside.data();
  uint32_t i = 1;
  while (i < n) {
    const TokenTrie::Node& node = nodes[i];
    const uint16_t q = st[node.depth - 1];
    const uint16_t t = table[q * ncls + cls[node.byte]];
    if (t >= RegionKey::kExit) {
      if (t == RegionKey::kExit) {
        out.exit_nodes.push_back(i);
        out.exit_states.push_back(q);
      }
      i = node.end;
      continue;
    }
    st[node.depth] = t;
    if (node.token >= 0) {
      in[node.token >> 5] |= 1u << (node.token & 31);
      ++count;
      if (node.more) {
        for (const int32_t* k = trie.tokens_begin(i) + 1; k != trie.tokens_end(i); ++k) {
          in[*k >> 5] |= 1u << (*k & 31);
          ++count;
        }
      }
    }
    ++i;
  }
  out.inside = TokenSet::from_bits(inside.data(), words, count);
  return out;
}

std::shared_ptr<const RegionWalk> TokenVocabulary::region_walk(const RegionKey& key) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key.hash);
    if (it != cache_.end()) {
      for (auto& [k, w] : it->second) {
        if (k == key) {
          ++stats_.hits;
          return w;
        }
      }
    }
  }
  auto w = std::make_shared<const RegionWalk>(walk(key));
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.misses;
  auto& bucket = cache_[key.hash];
  for (auto& [k, existing] : bucket) {
    if (k == key) return existing;  // another thread got there first
  }
  const size_t bytes = w->memory_bytes() + key.table.size() * 2 + sizeof(RegionKey);
  if (stats_.bytes + bytes > kMaxCacheBytes) {
    // Simple bound: start over (entries in use stay alive through their owners).
    cache_.clear();
    stats_.bytes = 0;
    stats_.entries = 0;
  }
  cache_[key.hash].push_back({key, w});
  stats_.bytes += bytes;
  ++stats_.entries;
  return w;
}

TokenVocabulary::CacheStats TokenVocabulary::region_cache_stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace kr::grammar
