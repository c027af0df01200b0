// libFuzzer target: the grammar compiler on arbitrary input, and a matcher on
// what compiles. The first byte picks the front end (JSON Schema, regex, GBNF,
// choices separated by newlines); the rest is the source. Every outcome must
// be a compiled grammar or an InvalidArgument error; a compiled grammar is
// then driven for a few steps, where the mask must agree with accept_token.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "grammar/grammar_compiler.h"
#include "grammar/matcher.h"

namespace {

using namespace kr::grammar;

std::shared_ptr<const TokenVocabulary> vocab() {
  static std::shared_ptr<const TokenVocabulary> v = [] {
    std::vector<std::string> toks{""};  // 0: EOS
    for (int b = 0; b < 256; ++b) toks.push_back(std::string(1, static_cast<char>(b)));
    for (const char* t : {"{\"", "\":", "\",", "\"}", "true", "null", "12", ", ", "\n  ", "}]", "ab", "abc", "\xC3\xA9"}) {
      toks.push_back(t);
    }
    toks.push_back("<|special|>");
    auto r = TokenVocabulary::create(toks, {0}, {static_cast<int32_t>(toks.size() - 1)});
    if (!r.ok()) std::abort();
    return *r;
  }();
  return v;
}

CompileOptions limits() {
  CompileOptions o;
  o.pda.max_work = 2'000'000;  // keep each input fast
  o.pda.max_dfa_states = 20'000;
  o.pda.max_nfa_states = 100'000;
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string source(reinterpret_cast<const char*>(data) + 1, size - 1);
  GrammarSpec spec;
  switch (data[0] % 4) {
    case 0: spec = GrammarSpec::json_schema(source); break;
    case 1: spec = GrammarSpec::regex(source); break;
    case 2: spec = GrammarSpec::gbnf(source); break;
    default: {
      std::vector<std::string> choices;
      size_t start = 0;
      for (size_t i = 0; i <= source.size(); ++i) {
        if (i == source.size() || source[i] == '\n') {
          choices.push_back(source.substr(start, i - start));
          start = i + 1;
        }
      }
      spec = GrammarSpec::choices_of(std::move(choices));
    }
  }
  static GrammarCompiler compiler(vocab(), limits(), 64);
  auto g = compiler.compile(spec);
  if (!g.ok()) {
    if (g.status().code() != kr::StatusCode::kInvalidArgument) __builtin_trap();
    return 0;
  }
  // Drive a matcher: pick allowed tokens from the input bytes; the mask must
  // say exactly what accept_token accepts.
  GrammarMatcher m(*g);
  const TokenVocabulary& v = *vocab();
  std::vector<uint32_t> bits(v.mask_words());
  for (size_t step = 0; step < 16 && !m.is_finished(); ++step) {
    const size_t n = m.fill_mask(bits.data());
    std::vector<int32_t> allowed;
    for (size_t id = 0; id < v.size(); ++id) {
      const bool in = (bits[id >> 5] >> (id & 31)) & 1;
      const bool ok = m.accept_token(static_cast<int32_t>(id));
      if (ok) m.rollback(1);
      // Past max_stacks parses the mask may offer tokens accept_token refuses
      // (matcher.h); everywhere else they agree exactly.
      if (in != ok && m.error().empty()) __builtin_trap();
      if (in) allowed.push_back(static_cast<int32_t>(id));
    }
    if (allowed.size() != n && m.error().empty()) __builtin_trap();
    if (allowed.empty()) break;
    if (!m.accept_token(allowed[data[step % size] % allowed.size()]) && m.error().empty()) __builtin_trap();
  }
  return 0;
}
