#include "grammar/random_walk_for_test.h"

#include <chrono>
#include <ctime>

#include "grammar/matcher.h"

namespace kr::grammar {

WalkTokenClasses WalkTokenClasses::for_vocab(const TokenVocabulary& v) {
  WalkTokenClasses c;
  c.structural.assign(v.mask_words(), 0);
  c.closing.assign(v.mask_words(), 0);
  for (size_t id = 0; id < v.size(); ++id) {
    const std::string& t = v.token(static_cast<int32_t>(id));
    bool s = t.find_first_of("\"{}[],:") != std::string::npos;
    bool cl = t.find_first_of("\"]}") != std::string::npos;
    if (s) c.structural[id >> 5] |= 1u << (id & 31);
    if (cl) c.closing[id >> 5] |= 1u << (id & 31);
  }
  return c;
}

namespace {
double thread_cpu_us() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) * 1e-3;
}

// The k-th set bit of (a & b) (b may be null).
int32_t kth_bit(const std::vector<uint32_t>& a, const std::vector<uint32_t>* b, size_t k) {
  for (size_t w = 0; w < a.size(); ++w) {
    uint32_t x = b ? (a[w] & (*b)[w]) : a[w];
    size_t n = static_cast<size_t>(__builtin_popcount(x));
    if (k < n) {
      for (;;) {
        int bit = __builtin_ctz(x);
        if (k == 0) return static_cast<int32_t>(w * 32 + static_cast<size_t>(bit));
        x &= x - 1;
        --k;
      }
    }
    k -= n;
  }
  return -1;
}

size_t count_bits(const std::vector<uint32_t>& a, const std::vector<uint32_t>* b) {
  size_t n = 0;
  for (size_t w = 0; w < a.size(); ++w) n += static_cast<size_t>(__builtin_popcount(b ? (a[w] & (*b)[w]) : a[w]));
  return n;
}
}  // namespace

WalkResult random_walk(const std::shared_ptr<const CompiledGrammar>& grammar, const WalkTokenClasses& classes,
                       std::mt19937_64& rng, const WalkOptions& options) {
  const TokenVocabulary& v = grammar->vocab();
  GrammarMatcher m(grammar);
  WalkResult r;
  std::vector<uint32_t> bits(v.mask_words());
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  for (int step = 0; step < options.max_tokens; ++step) {
    const double c0 = thread_cpu_us();
    auto t0 = std::chrono::steady_clock::now();
    size_t n = m.fill_mask(bits.data());
    auto t1 = std::chrono::steady_clock::now();
    const double c1 = thread_cpu_us();
    r.mask_us.push_back(c1 - c0);
    r.mask_wall_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    if (n == 0) break;
    bool eos_allowed = false;
    for (int32_t e : v.eos_ids()) eos_allowed |= (bits[e >> 5] >> (e & 31)) & 1;
    int32_t pick = -1;
    if (eos_allowed && (n == 1 || coin(rng) < options.eos_prob)) {
      for (int32_t e : v.eos_ids()) {
        if ((bits[e >> 5] >> (e & 31)) & 1) pick = e;
      }
    } else {
      const std::vector<uint32_t>* prefer = nullptr;
      if (step >= options.soft_max_tokens && coin(rng) < 0.9) {
        prefer = &classes.closing;
      } else if (coin(rng) < options.structural_bias) {
        prefer = &classes.structural;
      }
      size_t np = prefer ? count_bits(bits, prefer) : 0;
      if (prefer && np > 0) {
        pick = kth_bit(bits, prefer, std::uniform_int_distribution<size_t>(0, np - 1)(rng));
      } else {
        pick = kth_bit(bits, nullptr, std::uniform_int_distribution<size_t>(0, n - 1)(rng));
      }
      // EOS is chosen above or not at all.
      if (v.is_eos(pick)) {
        if (n == 1) break;
        continue;
      }
    }
    if (!m.accept_token(pick)) {
      r.mask_error = true;
      break;
    }
    r.tokens.push_back(pick);
    if (m.is_finished()) {
      r.finished = true;
      break;
    }
    r.text += v.token(pick);
  }
  return r;
}

}  // namespace kr::grammar
